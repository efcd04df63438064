// Command benchcmp is scripts/bench.sh's helper: it makes frame files,
// counts frames stored intact, and turns `go test -bench` output into the
// ratios the benchmark report prints. It needs nothing beyond the Go
// standard library, so bench.sh runs anywhere Go does.
//
//	benchcmp gen DIR COUNT SIZE [SEED]   write COUNT files of SIZE bytes
//	benchcmp intact SENT_DIR STORED_DIR   print "<intact> <sent> <stored>"
//	benchcmp ratios BENCH_OUTPUT          print framepush vs raw TCP ratios
package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: benchcmp gen|intact|ratios ARGS (see the package doc)")
	}
	switch args[0] {
	case "gen":
		if len(args) < 4 || len(args) > 5 {
			return errors.New("usage: benchcmp gen DIR COUNT SIZE [SEED]")
		}
		n, err1 := strconv.Atoi(args[2])
		size, err2 := strconv.Atoi(args[3])
		seed := uint64(1)
		var err3 error
		if len(args) == 5 {
			seed, err3 = strconv.ParseUint(args[4], 10, 64)
		}
		if err := errors.Join(err1, err2, err3); err != nil || n < 0 || size < 1 {
			return fmt.Errorf("gen: bad COUNT, SIZE or SEED: %v", args[2:])
		}
		return gen(args[1], n, size, seed)
	case "intact":
		if len(args) != 3 {
			return errors.New("usage: benchcmp intact SENT_DIR STORED_DIR")
		}
		intact, sent, stored, err := countIntact(args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Fprintln(out, intact, sent, stored)
		return nil
	case "ratios":
		if len(args) != 2 {
			return errors.New("usage: benchcmp ratios BENCH_OUTPUT")
		}
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		return ratios(parse(f), out)
	}
	return fmt.Errorf("unknown command %q (want gen, intact or ratios)", args[0])
}

// gen writes count files of size pseudo-random bytes, each distinct and
// starting with a JPEG marker, named so that they sort in creation order.
func gen(dir string, count, size int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, uint64(size)))
	b := make([]byte, size)
	for i := range count {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
		name := filepath.Join(dir, fmt.Sprintf("frame-%06d.jpg", i))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// countIntact reports how many files under sent have a byte-identical copy
// under stored, how many were sent, and how many files stored holds.
func countIntact(sentDir, storedDir string) (intact, sent, stored int, err error) {
	sums := func(dir string) (map[[32]byte]int, int, error) {
		m := make(map[[32]byte]int)
		n := 0
		err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() || strings.HasPrefix(de.Name(), ".part-") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m[sha256.Sum256(b)]++
			n++
			return nil
		})
		return m, n, err
	}
	s, sent, err := sums(sentDir)
	if err != nil {
		return 0, 0, 0, err
	}
	st, stored, err := sums(storedDir)
	if err != nil {
		return 0, 0, 0, err
	}
	for h, n := range s {
		intact += min(n, st[h])
	}
	return intact, sent, stored, nil
}

// result is one benchmark line's metrics by unit (ns/op, MB/s, frames/s,
// B/op, allocs/op).
type result map[string]float64

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parse reads `go test -bench` output; a benchmark run several times
// (-count) keeps its last result.
func parse(r io.Reader) map[string]result {
	res := make(map[string]result)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		v := make(result)
		for i := 0; i+1 < len(f); i += 2 {
			x, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			v[f[i+1]] = x
		}
		res[m[1]] = v
	}
	return res
}

var sizeRe = regexp.MustCompile(`size=(\d+)(KiB|MiB)$`)

func sizeBytes(name string) int {
	m := sizeRe.FindStringSubmatch(name)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "MiB" {
		return n << 20
	}
	return n << 10
}

// ratios prints framepush (sender + receiver, persistent, LF) against the
// raw TCP reference at each size, fsync off and on, and the seed mode.
func ratios(res map[string]result, out io.Writer) error {
	type row struct {
		size      int
		label     string
		raw, fp   float64
		fpFsync   float64
		fpAllocs  float64
		hasFsync  bool
		hasFPRow  bool
		hasRawRow bool
	}
	rows := make(map[string]*row)
	get := func(label string) *row {
		r := rows[label]
		if r == nil {
			r = &row{size: sizeBytes("size=" + label), label: label}
			rows[label] = r
		}
		return r
	}
	for name, v := range res {
		const rawP, fpP, fsP = "BenchmarkRawTCP/size=", "BenchmarkSendReceive/fsync=false/size=", "BenchmarkSendReceive/fsync=true/size="
		switch {
		case strings.HasPrefix(name, rawP):
			r := get(strings.TrimPrefix(name, rawP))
			r.raw, r.hasRawRow = v["frames/s"], true
		case strings.HasPrefix(name, fpP):
			r := get(strings.TrimPrefix(name, fpP))
			r.fp, r.fpAllocs, r.hasFPRow = v["frames/s"], v["allocs/op"], true
		case strings.HasPrefix(name, fsP):
			r := get(strings.TrimPrefix(name, fsP))
			r.fpFsync, r.hasFsync = v["frames/s"], true
		}
	}
	if len(rows) == 0 {
		return errors.New("no BenchmarkRawTCP / BenchmarkSendReceive results (internal/e2e) in the benchmark output")
	}
	list := make([]*row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].size < list[j].size })
	fmt.Fprintf(out, "%-8s %12s %14s %8s %14s %8s\n", "size", "raw TCP f/s", "framepush f/s", "ratio", "fsync=on f/s", "ratio")
	cell := func(ok bool, x float64) string {
		if !ok {
			return "-"
		}
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	ratio := func(ok bool, a, b float64) string {
		if !ok || b == 0 {
			return "-"
		}
		return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
	}
	for _, r := range list {
		fmt.Fprintf(out, "%-8s %12s %14s %8s %14s %8s\n", r.label,
			cell(r.hasRawRow, r.raw), cell(r.hasFPRow, r.fp), ratio(r.hasFPRow && r.hasRawRow, r.fp, r.raw),
			cell(r.hasFsync, r.fpFsync), ratio(r.hasFsync && r.hasRawRow, r.fpFsync, r.raw))
	}
	var seed []string
	for name := range res {
		if strings.HasPrefix(name, "BenchmarkSeedMode/") {
			seed = append(seed, name)
		}
	}
	sort.Strings(seed)
	if len(seed) > 0 {
		fmt.Fprintln(out, "\nseed mode (one connection per frame):")
		for _, name := range seed {
			fmt.Fprintf(out, "  %-40s %10.0f frames/s\n", strings.TrimPrefix(name, "BenchmarkSeedMode/"), res[name]["frames/s"])
		}
	}
	return nil
}
