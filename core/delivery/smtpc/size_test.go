package smtpc

import "testing"

// SIZE (RFC 1870 4): the keyword alone, or with 0, names no limit; a
// parameter that is not a number is read as no limit rather than as 0 bytes.
func TestSize(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		ok    bool
		limit int64
	}{
		{"not offered", []string{"mx.test", "PIPELINING"}, false, 0},
		{"no limit", []string{"mx.test", "SIZE"}, true, 0},
		{"zero", []string{"mx.test", "SIZE 0"}, true, 0},
		{"limit", []string{"mx.test", "size 10240000"}, true, 10240000},
		{"junk", []string{"mx.test", "SIZE lots"}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ext: parseEHLO(tt.lines)}
			if ok, limit := c.Size(); ok != tt.ok || limit != tt.limit {
				t.Errorf("Size() = %v, %d; want %v, %d", ok, limit, tt.ok, tt.limit)
			}
		})
	}
}
