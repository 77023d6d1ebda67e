package bayes

import "os"

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
	if os.Getenv("BAYES_MISSES") != "" {
		return out
	}
	base.opt.MinLen, base.params.RobX = 3, 0.55
	add("minlen3 robx0.55", func(c *cvSetup) {})
	add("robs0.2", func(c *cvSetup) { c.params.RobS = 0.2 })
	add("robs0.5", func(c *cvSetup) { c.params.RobS = 0.5 })
	add("mindev0.43", func(c *cvSetup) { c.params.MinDev = 0.43 })
	add("mindev0.47", func(c *cvSetup) { c.params.MinDev = 0.47 })
	add("robx0.6", func(c *cvSetup) { c.params.RobX = 0.6 })
	return out
}
