package bayes

import "fmt"

func cvSweep() []cvSetup {
	base := defaultSetup()
	base.opt.RawHTML, base.opt.HTMLAttrs = true, true
	var out []cvSetup
	add := func(name string, f func(c *cvSetup)) {
		c := base
		c.name = name
		f(&c)
		out = append(out, c)
	}
	add("attrs", func(c *cvSetup) {})
	for _, d := range []float64{0.1, 0.2, 0.3, 0.4} {
		add("mindev", func(c *cvSetup) { c.params.MinDev = d; c.name += fmt.Sprint(d) })
	}
	for _, s := range []float64{0.1, 1} {
		add("robs", func(c *cvSetup) { c.params.RobS = s; c.name += fmt.Sprint(s) })
	}
	add("max150", func(c *cvSetup) { c.params.MaxTokens = 150 })
	add("mindev0.2 max150", func(c *cvSetup) { c.params.MaxTokens = 150; c.params.MinDev = 0.2 })
	for _, r := range []int{0, 1, 3} {
		add("rounds", func(c *cvSetup) { c.rounds = r; c.name += fmt.Sprint(r) })
	}
	return out
}
