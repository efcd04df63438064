// Package dir is the capture source that replays the JPEG and PNG files of
// a directory in name order, once or in a loop.
package dir
