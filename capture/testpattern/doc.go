// Package testpattern is the capture source that renders colour bars with
// a frame counter and the capture time, for trying the pipeline without a
// camera.
package testpattern
