package bayes

import "os"

// cvSweep lists the configurations TestCVSweep compares, each a change
// from the defaults.
func cvSweep() []cvSetup {
	base := defaultSetup()
	var out []cvSetup
	add := func(name string, f func(c *cvSetup)) {
		c := base
		c.name = name
		f(&c)
		out = append(out, c)
	}
	add("defaults", func(c *cvSetup) {})
	if os.Getenv("BAYES_MISSES") != "" {
		return out
	}
	add("without ShareAddr and HdrOrder (before issue 7)", func(c *cvSetup) { c.opt.ShareAddr, c.opt.HdrOrder = false, false })
	add("without ShareAddr", func(c *cvSetup) { c.opt.ShareAddr = false })
	add("without HdrOrder", func(c *cvSetup) { c.opt.HdrOrder = false })
	return out
}
