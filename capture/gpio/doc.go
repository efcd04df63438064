// Package gpio is the capture trigger for GPIO input lines, through the
// kernel's character device (periph's gpioioctl driver): debounced edges
// become capture.Events of kind frame.GPIO. ListChips describes the chips
// for `framepush devices`. It is the only package that links periph.
package gpio
