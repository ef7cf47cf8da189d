package avro

import (
	"errors"
	"fmt"
)

// maxDepth bounds how deeply records may nest in a body; only recursive
// schemas can get near it, and this keeps hostile input from driving
// goavro's recursive decoder into huge stacks.
const maxDepth = 1000

var (
	errShort          = errors.New("unexpected end of data")
	errVarintOverflow = errors.New("varint longer than 10 bytes")
)

// scanBody walks an Avro binary body of type n without allocating and
// reports whether it is well formed. It guards goavro, which pre-allocates
// array and map storage from the block count read from the data (a 6-byte
// message could otherwise ask for gigabytes) and recurses without limit.
// Every block count must not exceed the bytes left, so allocation stays
// proportional to the message size. Only schemas containing an array, a map
// or a recursive reference are scanned.
func scanBody(n *node, b []byte) error {
	rest, err := skip(n, b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

func skip(n *node, b []byte, depth int) ([]byte, error) {
	switch n.kind {
	case kNull:
		return b, nil
	case kBoolean:
		if len(b) < 1 {
			return nil, errShort
		}
		return b[1:], nil
	case kInt, kLong, kEnum:
		v, rest, err := varint(b)
		if err != nil {
			return nil, err
		}
		if n.kind == kEnum && (v < 0 || v >= int64(len(n.symbols))) {
			return nil, fmt.Errorf("enum %s: index %d out of range", n.name, v)
		}
		return rest, nil
	case kFloat:
		return fixedLen(b, 4)
	case kDouble:
		return fixedLen(b, 8)
	case kFixed:
		return fixedLen(b, n.size)
	case kBytes, kString:
		l, rest, err := varint(b)
		if err != nil {
			return nil, err
		}
		if l < 0 || l > int64(len(rest)) {
			return nil, fmt.Errorf("length %d exceeds the %d bytes left", l, len(rest))
		}
		return rest[l:], nil
	}
	switch n.kind {
	case kUnion:
		i, rest, err := varint(b)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return nil, fmt.Errorf("union index %d out of range", i)
		}
		return skip(n.branches[i], rest, depth)
	case kRecord:
		if depth++; depth > maxDepth {
			return nil, fmt.Errorf("records nested deeper than %d", maxDepth)
		}
		var err error
		for _, f := range n.fields {
			if b, err = skip(f.typ, b, depth); err != nil {
				return nil, err
			}
		}
		return b, nil
	case kArray, kMap:
		for {
			count, rest, err := varint(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if count == 0 {
				return b, nil
			}
			if count < 0 {
				if _, b, err = varint(b); err != nil { // block size in bytes
					return nil, err
				}
				count = -count
			}
			if count < 0 || count > int64(len(b)) {
				return nil, fmt.Errorf("block count %d exceeds the %d bytes left", count, len(b))
			}
			for range count {
				if n.kind == kMap {
					if b, err = skip(&stringNode, b, depth); err != nil {
						return nil, err
					}
					if b, err = skip(n.values, b, depth); err != nil {
						return nil, err
					}
				} else if b, err = skip(n.items, b, depth); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("cannot scan type %s", n.kind)
}

var stringNode = node{kind: kString}

func fixedLen(b []byte, n int) ([]byte, error) {
	if len(b) < n {
		return nil, errShort
	}
	return b[n:], nil
}

// varint reads a zig-zag encoded variable-length long.
func varint(b []byte) (int64, []byte, error) {
	var u uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		u |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return int64(u>>1) ^ -int64(u&1), b[i+1:], nil
		}
	}
	if len(b) < 10 {
		return 0, nil, errShort
	}
	return 0, nil, errVarintOverflow
}
