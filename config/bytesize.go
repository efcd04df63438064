package config

import (
	"reflect"

	"framepush/internal/bytesize"
)

// ByteSize is a byte count written as a plain number or with a binary or
// decimal unit: 65536, 64KiB, 512MiB, 1GiB, 10MB. It is bytesize.Size, so
// framerecv can parse sizes the same way without importing this package.
type ByteSize = bytesize.Size

// Units.
const (
	KiB = bytesize.KiB
	MiB = bytesize.MiB
	GiB = bytesize.GiB
)

// ParseByteSize parses "64MiB" and friends.
func ParseByteSize(s string) (ByteSize, error) { return bytesize.Parse(s) }

// sizeTypeName is how YAML decoding errors name ByteSize ("bytesize.Size");
// load.go rewrites it into words.
var sizeTypeName = reflect.TypeOf(ByteSize(0)).String()
