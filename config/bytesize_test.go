package config

import (
	"strings"
	"testing"
)

// ByteSize lives in internal/bytesize; a value of the wrong YAML type must
// still get the size error, and no Go type name.
func TestSizeTypeErrorNamesNoGoType(t *testing.T) {
	_, err := Load(write(t, "queue:\n  memory_bytes: [1, 2]\n"), nil, nil)
	if err == nil {
		t.Fatal("a sequence was accepted as a size")
	}
	if msg := err.Error(); !strings.Contains(msg, "is not a size (want e.g. 65536, 512KiB") || strings.Contains(msg, "bytesize.") {
		t.Fatalf("error %q should say \"is not a size\" and name no Go type", msg)
	}
}
