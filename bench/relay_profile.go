package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"
)

// The relay benchmark's sink and load client share one process, and the report
// must say how much CPU the sink took, to show that it was not what limited the
// servers. The process's CPU time covers both; a CPU profile taken with the two
// labelled (pprof.Labels "role") splits it. cpuByLabel reads such a profile: the
// few fields of the profile.proto format it needs, decoded by hand so that the
// benchmark needs nothing beyond the standard library.

// maxProfileSize bounds a decompressed profile; a CPU profile of a few minutes is
// well under a megabyte.
const maxProfileSize = 64 << 20

// errBadProfile is wrapped by every error cpuByLabel returns for bytes that are
// not a profile it understands.
var errBadProfile = errors.New("malformed CPU profile")

// cpuByLabel sums the CPU time of the samples of a runtime/pprof CPU profile
// (gzip-compressed or not) by the value of the label key. It returns the sums per
// value (samples without the label are not in it) and the total of all samples.
func cpuByLabel(prof []byte, key string) (map[string]time.Duration, time.Duration, error) {
	if len(prof) >= 2 && prof[0] == 0x1f && prof[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(prof))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", errBadProfile, err)
		}
		raw, err := io.ReadAll(io.LimitReader(zr, maxProfileSize+1))
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", errBadProfile, err)
		}
		if len(raw) > maxProfileSize {
			return nil, 0, fmt.Errorf("%w: more than %d bytes", errBadProfile, maxProfileSize)
		}
		prof = raw
	}

	// Profile: 1 sample_type (ValueType), 2 sample (Sample), 6 string_table.
	// The string table comes last in runtime/pprof's output, so samples are
	// kept raw until it is known.
	var (
		samples     [][]byte
		strs        []string
		sampleTypes [][2]int64 // type and unit, as string table indices
	)
	err := protoFields(prof, func(num int, wire int, v uint64, data []byte) error {
		switch {
		case num == 1 && wire == wireBytes:
			var vt [2]int64
			err := protoFields(data, func(n, w int, v uint64, _ []byte) error {
				if (n == 1 || n == 2) && w == wireVarint {
					vt[n-1] = int64(v)
				}
				return nil
			})
			sampleTypes = append(sampleTypes, vt)
			return err
		case num == 2 && wire == wireBytes:
			samples = append(samples, data)
		case num == 6 && wire == wireBytes:
			strs = append(strs, string(data))
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	// CPU profiles have two values per sample, samples/count and
	// cpu/nanoseconds; the time is the one wanted.
	valueIndex := -1
	for i, vt := range sampleTypes {
		if str(vt[0]) == "cpu" && str(vt[1]) == "nanoseconds" {
			valueIndex = i
		}
	}
	if valueIndex < 0 {
		return nil, 0, fmt.Errorf("%w: no cpu/nanoseconds sample type", errBadProfile)
	}

	byValue := map[string]time.Duration{}
	var total time.Duration
	for _, sm := range samples {
		// Sample: 2 value (packed or not), 3 label (Label: 1 key, 2 str).
		var values []int64
		label, labelled := "", false
		err := protoFields(sm, func(num int, wire int, v uint64, data []byte) error {
			switch {
			case num == 2 && wire == wireVarint:
				values = append(values, int64(v))
			case num == 2 && wire == wireBytes:
				for len(data) > 0 {
					x, n := protoVarint(data)
					if n <= 0 {
						return fmt.Errorf("%w: bad packed value", errBadProfile)
					}
					values = append(values, int64(x))
					data = data[n:]
				}
			case num == 3 && wire == wireBytes:
				var k, s int64
				err := protoFields(data, func(n, w int, v uint64, _ []byte) error {
					if w == wireVarint && n == 1 {
						k = int64(v)
					}
					if w == wireVarint && n == 2 {
						s = int64(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
				if str(k) == key {
					label, labelled = str(s), true
				}
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		if valueIndex >= len(values) {
			return nil, 0, fmt.Errorf("%w: sample with %d values, want at least %d", errBadProfile, len(values), valueIndex+1)
		}
		d := time.Duration(values[valueIndex])
		total += d
		if labelled {
			byValue[label] += d
		}
	}
	return byValue, total, nil
}

// Protocol buffer wire types (the ones that carry data; groups are not used by
// profile.proto and are refused).
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// protoVarint decodes a base-128 varint from the start of b and returns it and
// its length, or a length of 0 if b does not start with a complete varint of at
// most ten bytes.
func protoVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// protoFields calls fn for each field of the message b: its number, wire type,
// and value (v for varints, data for length-delimited fields; fixed-size fields
// are skipped).
func protoFields(b []byte, fn func(num, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		tag, n := protoVarint(b)
		if n == 0 {
			return fmt.Errorf("%w: bad field tag", errBadProfile)
		}
		b = b[n:]
		num, wire := tag>>3, int(tag&7)
		if num == 0 || num > 1<<29 {
			return fmt.Errorf("%w: field number %d", errBadProfile, num)
		}
		var v uint64
		var data []byte
		switch wire {
		case wireVarint:
			v, n = protoVarint(b)
			if n == 0 {
				return fmt.Errorf("%w: bad varint in field %d", errBadProfile, num)
			}
			b = b[n:]
		case wireBytes:
			l, n := protoVarint(b)
			if n == 0 || l > uint64(len(b)-n) {
				return fmt.Errorf("%w: bad length in field %d", errBadProfile, num)
			}
			data = b[n : n+int(l)]
			b = b[n+int(l):]
		case wireFixed64, wireFixed32:
			size := 8
			if wire == wireFixed32 {
				size = 4
			}
			if len(b) < size {
				return fmt.Errorf("%w: short fixed-size field %d", errBadProfile, num)
			}
			b = b[size:]
			continue
		default:
			return fmt.Errorf("%w: wire type %d in field %d", errBadProfile, wire, num)
		}
		if err := fn(int(num), wire, v, data); err != nil {
			return err
		}
	}
	return nil
}
