// Package command is the capture source that runs a program writing an
// MJPEG stream to its standard output (rpicam-vid, ffmpeg) and splits it
// into frames. A Source runs one child; the capture.Reopener restarts it.
package command
