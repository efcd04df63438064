// Package mjpeg holds the JPEG helpers the capture sources share: Fix
// inserts the Huffman tables MJPEG streams leave out, Validate rejects
// truncated or corrupt frames, Splitter cuts a byte stream of concatenated
// JPEGs into frames with bounded memory, and YUYVEncoder turns raw YUYV
// into JPEG. It imports no project package.
package mjpeg
