package stream

import "github.com/IBM/sarama"

// PartitionFor returns the partition of key among n partitions: the Java
// client's default (murmur2 of the key, sign bit cleared, modulo n), which is
// also franz-go's, so records keyed alike land alike whatever produced them.
func PartitionFor(key []byte, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed = uint32(0x9747b28c)
		m    = uint32(0x5bd1e995)
		r    = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// keyPartitioner is a sarama.Partitioner using PartitionFor for keyed
// records and round-robin for records without a key.
type keyPartitioner struct {
	next int32
}

// NewPartitioner returns the engine's sarama partitioner.
func NewPartitioner(string) sarama.Partitioner { return &keyPartitioner{} }

// pinned, as a ProducerMessage's Metadata, sends it to that partition.
type pinned int32

func (p *keyPartitioner) Partition(msg *sarama.ProducerMessage, n int32) (int32, error) {
	if pin, ok := msg.Metadata.(pinned); ok {
		return int32(pin), nil
	}
	if msg.Key == nil {
		p.next = (p.next + 1) % n
		return p.next, nil
	}
	key, err := msg.Key.Encode()
	if err != nil {
		return -1, err
	}
	return PartitionFor(key, n), nil
}

func (p *keyPartitioner) RequiresConsistency() bool { return true }
