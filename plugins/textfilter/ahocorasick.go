package textfilter

import (
	"slices"
	"strings"
)

// matcher is an Aho-Corasick automaton over bytes (Aho and Corasick 1975):
// one pass over the text finds every occurrence of every pattern, so 10,000
// words cost about what one costs. Patterns are UTF-8; because UTF-8 is
// self-synchronising a match can only start at a character boundary.
//
// No library in the module proxy was both tagged and kept up, so this is a
// compact one: a dense table at the root (where most steps land) and sorted
// edge lists elsewhere (most inner nodes have one child), in flat arrays of
// about 21 bytes a node. It is built without a map per node, which cost
// about 350 bytes a node while it was built: a list of a million words made
// the plugin take 1.6 GB to load a rule set of 230 MB.
type matcher struct {
	root  [256]int32 // root transitions, already completed with the fail link (0)
	first []int32    // node i's edges are labels/next[first[i]:first[i+1]]
	label []byte
	next  []int32
	fail  []int32
	more  []int32 // next node on the fail chain with an output, -1 if none
	out   []int32 // node i's patterns are ids[out[i]:out[i+1]]
	ids   []int32
}

// newMatcher builds the automaton; pattern i reports id i.
//
// The patterns are inserted in byte order, so a node's children are made
// in the order of their labels and the previous pattern's path holds every
// node a new one can share: no lookup structure is needed. Node k+1 is
// made by edge k; the edges are then grouped by parent, which keeps each
// node's labels sorted.
func newMatcher(patterns []string) *matcher {
	order := make([]int32, 0, len(patterns))
	for id, p := range patterns {
		if p != "" {
			order = append(order, int32(id))
		}
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(patterns[a], patterns[b]) })
	size := 0 // the nodes there can be: one a byte
	for _, id := range order {
		size += len(patterns[id])
	}
	parent := make([]int32, 0, size) // edge k: from parent[k] to node k+1 on label[k]
	label := make([]byte, 0, size)
	endOf := make([]int32, len(patterns)) // the node each pattern ends at
	path := []int32{0}                    // the nodes along the previous pattern
	prev := ""
	for _, id := range order {
		p := patterns[id]
		lcp := 0
		for lcp < len(p) && lcp < len(prev) && p[lcp] == prev[lcp] {
			lcp++
		}
		path = path[:lcp+1]
		for i := lcp; i < len(p); i++ {
			parent = append(parent, path[i])
			label = append(label, p[i])
			path = append(path, int32(len(parent)))
		}
		endOf[id] = path[len(p)]
		prev = p
	}
	nodes := len(parent) + 1
	m := &matcher{fail: make([]int32, nodes), more: make([]int32, nodes)}
	m.flatten(parent, label)
	m.outputs(order, endOf, nodes)
	m.links()
	return m
}

// flatten groups the edges by parent (a counting sort, stable, so each
// node's labels stay in the order they were made: sorted).
func (m *matcher) flatten(parent []int32, label []byte) {
	nodes := len(parent) + 1
	m.first = make([]int32, nodes+1)
	for _, p := range parent {
		m.first[p+1]++
	}
	for i := 1; i <= nodes; i++ {
		m.first[i] += m.first[i-1]
	}
	m.label, m.next = make([]byte, len(parent)), make([]int32, len(parent))
	fill := slices.Clone(m.first[:nodes])
	for k, p := range parent {
		m.label[fill[p]], m.next[fill[p]] = label[k], int32(k+1)
		fill[p]++
		if p == 0 {
			m.root[label[k]] = int32(k + 1)
		}
	}
}

// outputs records the patterns ending at each node, in id order.
func (m *matcher) outputs(order, endOf []int32, nodes int) {
	m.out = make([]int32, nodes+1)
	for _, id := range order {
		m.out[endOf[id]+1]++
	}
	for i := 1; i <= nodes; i++ {
		m.out[i] += m.out[i-1]
	}
	m.ids = make([]int32, len(order))
	fill := slices.Clone(m.out[:nodes])
	for id, n := range endOf { // by id: each node's list in id order
		if n > 0 {
			m.ids[fill[n]] = int32(id)
			fill[n]++
		}
	}
}

// patterns are the ids of the patterns ending at node n.
func (m *matcher) patterns(n int32) []int32 { return m.ids[m.out[n]:m.out[n+1]] }

// links computes fail and output links breadth first.
func (m *matcher) links() {
	m.more[0] = -1
	queue := make([]int32, 0, len(m.fail))
	for e := m.first[0]; e < m.first[1]; e++ {
		nx := m.next[e]
		m.fail[nx] = 0
		m.more[nx] = -1
		queue = append(queue, nx)
	}
	for head := 0; head < len(queue); head++ {
		n := queue[head]
		for e := m.first[n]; e < m.first[n+1]; e++ {
			c, nx := m.label[e], m.next[e]
			f := m.fail[n]
			for f != 0 && m.edge(f, c) < 0 {
				f = m.fail[f]
			}
			if e := m.step(f, c); e != nx {
				m.fail[nx] = e
			}
			fl := m.fail[nx]
			if m.out[fl+1] > m.out[fl] {
				m.more[nx] = fl
			} else {
				m.more[nx] = m.more[fl]
			}
			queue = append(queue, nx)
		}
	}
}

// edge returns the child of n on c, or -1.
func (m *matcher) edge(n int32, c byte) int32 {
	lo, hi := m.first[n], m.first[n+1]
	for hi-lo > 8 {
		mid := (lo + hi) / 2
		if m.label[mid] < c {
			lo = mid + 1
		} else {
			hi = mid + 1 // mid may be c's: it stays in [lo, hi)
		}
	}
	for ; lo < hi; lo++ {
		if m.label[lo] == c {
			return m.next[lo]
		}
	}
	return -1
}

// step follows the goto function with fail links.
func (m *matcher) step(n int32, c byte) int32 {
	for n != 0 {
		if e := m.edge(n, c); e >= 0 {
			return e
		}
		n = m.fail[n]
	}
	return m.root[c]
}

// scan calls hit for every pattern occurrence in text.
func (m *matcher) scan(text string, hit func(id int32)) {
	n := int32(0)
	for i := 0; i < len(text); i++ {
		n = m.step(n, text[i])
		for o := n; o > 0; o = m.more[o] {
			for _, id := range m.patterns(o) {
				hit(id)
			}
		}
	}
}
