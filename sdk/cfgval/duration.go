package cfgval

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration accepts Go duration syntax plus a "d" unit of 24 hours, which
// may be combined with the others ("5d", "1d12h", "1.5d"). A bare "0" is zero.
// It is the syntax of every duration in the gateway's config and rule files
// ("Durations use Go syntax plus d for days"), the stages' included.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	orig := s // for messages: s loses its days part
	// Split off a leading "<number>d" part; time.ParseDuration handles the rest.
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		// Decimal digits only: ParseFloat would also take "NaN", "Inf",
		// exponents and hex floats, which are not duration syntax.
		num := s[:i]
		n, err := strconv.ParseFloat(num, 64)
		if err != nil || num == "" || strings.Trim(num, "0123456789.") != "" {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if n > float64(1<<62)/float64(24*time.Hour) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		days = time.Duration(n * float64(24*time.Hour))
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
		if strings.ContainsAny(s, "d+-") {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use Go syntax like 90s, 5m, 2h, or days like 5d)", orig)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", orig)
	}
	if days > 0 && d > time.Duration(1<<62)-days {
		return 0, fmt.Errorf("duration %q out of range", orig)
	}
	return days + d, nil
}
