package state

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The changelog and the store hold table values as JSON. These encoders
// write exactly what encoding/json writes for the same values (the tests
// compare them byte for byte) without its reflection: a table writes a
// value per changed key per batch, and json.Marshal of the row maps was a
// tenth of a table pipeline's CPU.

// AppendRow appends the JSON object of row, keys sorted, as json.Marshal
// writes it.
func AppendRow(b []byte, row map[string]any) ([]byte, error) {
	if row == nil {
		return append(b, "null"...), nil
	}
	var keysBuf [16]string
	keys := keysBuf[:0]
	for k := range row {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, row[k]); err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// AppendFields appends the JSON object of rec's fields named in sorted
// (sorted, without duplicates), a missing one as null: what AppendRow
// writes for the row Def.Project makes of rec, without making it.
func AppendFields(b []byte, rec map[string]any, sorted []string) ([]byte, error) {
	b = append(b, '{')
	for i, k := range sorted {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, rec[k]); err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// SortedFields returns the fields a latest table keeps, sorted and without
// duplicates, for AppendFields; nil when it keeps every field.
func (d Def) SortedFields() []string {
	if len(d.Fields) == 0 {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(d.Fields)))
}

// appendValue appends v's JSON: the types records decode to directly, any
// other through encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case time.Time:
		if y := v.Year(); y < 0 || y > 9999 {
			break // encoding/json's error
		}
		if _, off := v.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
			break // encoding/json's rounding or error
		}
		b = append(b, '"')
		if _, off := v.Zone(); off == 0 {
			b = appendUTC(b, v)
		} else {
			b = v.AppendFormat(b, time.RFC3339Nano)
		}
		return append(b, '"'), nil
	case map[string]any:
		return AppendRow(b, v)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendUTC appends t, whose zone is UTC (offset 0) and year 0 to 9999,
// as t.AppendFormat(b, time.RFC3339Nano) does, in a fifth of the time:
// timestamps are most of a transaction row's fields.
func appendUTC(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append(b, byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T')
	b = append(b, byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':')
	b = append(b, byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [9]byte
		for i := 8; i >= 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, '.')
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// appendString appends s quoted: directly when no byte needs escaping
// (encoding/json also escapes <, > and & for HTML), else as encoding/json
// escapes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always encodes
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendJSON appends v's JSON, as json.Marshal writes it.
func (v *AggValue) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, v.Count, 10)
	if v.Sum != 0 {
		b = append(b, `,"sum":`...)
		b = strconv.AppendInt(b, v.Sum, 10)
	}
	if len(v.Groups) > 0 {
		var keysBuf [16]string
		keys := keysBuf[:0]
		for k := range v.Groups {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"groups":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			g := v.Groups[k]
			b = appendString(b, k)
			b = append(b, `:{"count":`...)
			b = strconv.AppendInt(b, g.Count, 10)
			if g.Sum != 0 {
				b = append(b, `,"sum":`...)
				b = strconv.AppendInt(b, g.Sum, 10)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	var err error
	if b, err = appendTimeField(b, `,"window_start":`, v.WindowStart); err != nil {
		return nil, err
	}
	if b, err = appendTimeField(b, `,"window_end":`, v.WindowEnd); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendTimeField(b []byte, name string, t *time.Time) ([]byte, error) {
	if t == nil {
		return b, nil
	}
	b = append(b, name...)
	return appendValue(b, *t)
}
