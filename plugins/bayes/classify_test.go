package bayes

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// The expected values below are worked by hand from the formulas cited in
// classify.go; for v=2 and v=4 the chi-square tail has the closed forms
// e^-m and e^-m (1+m) with m = x2/2.
func TestChi2Q(t *testing.T) {
	tests := []struct {
		name string
		x2   float64
		v    int
		want float64
	}{
		{"v2", 4, 2, math.Exp(-2)},
		{"v4", 4, 4, math.Exp(-2) * 3},
		{"zero", 0, 10, 1},
		{"huge x2 does not underflow to nonsense", 5000, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chi2Q(tt.x2, tt.v); !near(got, tt.want) {
				t.Errorf("chi2Q(%v, %d) = %v, want %v", tt.x2, tt.v, got, tt.want)
			}
		})
	}
	// Where chi2Q underflows, its log must stay finite and ordered.
	a, b := lnChi2Q(3000, 200), lnChi2Q(3500, 200)
	if math.IsInf(a, 0) || math.IsNaN(a) || !(b < a) {
		t.Errorf("lnChi2Q: %v, %v: want finite and decreasing", a, b)
	}
	if got := lnChi2Q(4, 4); !near(got, math.Log(3*math.Exp(-2))) {
		t.Errorf("lnChi2Q(4,4) = %v", got)
	}
}

func TestTokenProb(t *testing.T) {
	p := Params{RobS: 1, RobX: 0.5}
	tests := []struct {
		name        string
		c           Count
		nspam, nham uint32
		want        float64
	}{
		// ps = 3/10, ph = 1/10, p(w) = 0.75, n = 4: (1*0.5 + 4*0.75) / 5 = 0.7
		{"spammy", Count{3, 1}, 10, 10, 0.7},
		// class sizes differ: ps = 2/4, ph = 2/20, p(w) = 5/6, n = 4: (0.5 + 10/3) / 5
		{"normalised by class size", Count{2, 2}, 4, 20, (0.5 + 10.0/3) / 5},
		{"unknown", Count{}, 10, 10, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.tokenProb(tt.c, tt.nspam, tt.nham); !near(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFisher(t *testing.T) {
	// One token f=0.9: S = 1 - e^(ln 0.1) = 0.9, H = 1 - 0.9 = 0.1, I = 0.9.
	if got := fisher([]float64{0.9}); !near(got, 0.9) {
		t.Errorf("fisher(0.9) = %v, want 0.9", got)
	}
	// Two tokens 0.9 and 0.2: P = 0.1*0.8 = 0.08, Q_S = P(1 - ln P);
	// P' = 0.9*0.2 = 0.18, Q_H = P'(1 - ln P'); I = (1 + (1-Q_S) - (1-Q_H)) / 2.
	qs := 0.08 * (1 - math.Log(0.08))
	qh := 0.18 * (1 - math.Log(0.18))
	want := (1 + (1 - qs) - (1 - qh)) / 2
	if got := fisher([]float64{0.9, 0.2}); !near(got, want) {
		t.Errorf("fisher(0.9, 0.2) = %v, want %v", got, want)
	}
	if got := fisher(nil); got != 0.5 {
		t.Errorf("fisher() = %v, want 0.5 (no evidence)", got)
	}
}

func TestScoreUsesMinDevAndMaxTokens(t *testing.T) {
	p := Params{RobS: 0, RobX: 0.5, MinDev: 0.2}
	// p(w) with equal class sizes: 0.9, 0.55 (ignored: |0.05| < 0.2), 0.2.
	counts := []Count{{9, 1}, {11, 9}, {1, 4}}
	_, used := p.Score(counts, 100, 100)
	if used != 2 {
		t.Errorf("used %d tokens, want 2", used)
	}
	p.MaxTokens = 1
	if _, used := p.Score(counts, 100, 100); used != 1 {
		t.Errorf("MaxTokens 1: used %d", used)
	}
}

func TestFisherRatio(t *testing.T) {
	// One token: Q_S = 0.1, Q_H = 0.9, Q_H/(Q_S+Q_H) = 0.9 = f.
	if got := fisherRatio([]float64{0.9}); !near(got, 0.9) {
		t.Errorf("fisherRatio(0.9) = %v, want 0.9", got)
	}
	// Two tokens, the tails as in TestFisher: Q_H / (Q_S + Q_H).
	qs := 0.08 * (1 - math.Log(0.08))
	qh := 0.18 * (1 - math.Log(0.18))
	if got := fisherRatio([]float64{0.9, 0.2}); !near(got, qh/(qs+qh)) {
		t.Errorf("fisherRatio(0.9, 0.2) = %v, want %v", got, qh/(qs+qh))
	}
	// Where the classic combination saturates at exactly 0.5, the ratio
	// still tells which side is stronger.
	var mixed []float64
	for i := 0; i < 300; i++ {
		mixed = append(mixed, 0.999, 0.001)
	}
	mixed = append(mixed, 0.999)
	if c := fisher(mixed); c != 0.5 {
		t.Fatalf("classic combination did not saturate: %v", c)
	}
	if r := fisherRatio(mixed); !(r > 0.5) || r > 1 {
		t.Errorf("fisherRatio on saturated input = %v, want above 0.5", r)
	}
}
