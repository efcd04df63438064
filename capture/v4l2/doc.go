// Package v4l2 is the capture source for V4L2 cameras (USB webcams, CSI
// bridges with a V4L2 node): it negotiates a format, size and rate, applies
// controls, and delivers each frame as a JPEG (MJPEG passed through after
// mjpeg.Fix and mjpeg.Validate, YUYV encoded). ListCameras describes the
// cameras for `framepush devices`. It is the only package that links
// github.com/blackjack/webcam.
package v4l2
