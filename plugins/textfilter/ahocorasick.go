package textfilter

import "sort"

// matcher is an Aho-Corasick automaton over bytes (Aho and Corasick 1975):
// one pass over the text finds every occurrence of every pattern, so 10,000
// words cost about what one costs. Patterns are UTF-8; because UTF-8 is
// self-synchronising a match can only start at a character boundary.
//
// No library in the module proxy was both tagged and kept up, so this is a
// compact one: a dense table at the root (where most steps land) and sorted
// edge lists elsewhere (most inner nodes have one child).
type matcher struct {
	root  [256]int32 // root transitions, already completed with the fail link (0)
	first []int32    // node i's edges are labels/next[first[i]:first[i+1]]
	label []byte
	next  []int32
	fail  []int32
	more  []int32   // next node on the fail chain with an output, -1 if none
	ids   [][]int32 // patterns ending at each node
}

type buildNode struct {
	edges map[byte]int32
	ids   []int32
}

// newMatcher builds the automaton; pattern i reports id i.
func newMatcher(patterns []string) *matcher {
	nodes := []buildNode{{edges: map[byte]int32{}}}
	for id, p := range patterns {
		if p == "" {
			continue
		}
		n := int32(0)
		for i := 0; i < len(p); i++ {
			nx, ok := nodes[n].edges[p[i]]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, buildNode{edges: map[byte]int32{}})
				nodes[n].edges[p[i]] = nx
			}
			n = nx
		}
		nodes[n].ids = append(nodes[n].ids, int32(id))
	}
	m := &matcher{fail: make([]int32, len(nodes)), more: make([]int32, len(nodes)), ids: make([][]int32, len(nodes))}
	m.flatten(nodes)
	m.links(nodes)
	return m
}

// flatten stores the edges as sorted arrays.
func (m *matcher) flatten(nodes []buildNode) {
	m.first = make([]int32, len(nodes)+1)
	for i, n := range nodes {
		m.first[i] = int32(len(m.label))
		keys := make([]int, 0, len(n.edges))
		for c := range n.edges {
			keys = append(keys, int(c))
		}
		sort.Ints(keys)
		for _, c := range keys {
			m.label = append(m.label, byte(c))
			m.next = append(m.next, n.edges[byte(c)])
		}
		m.ids[i] = n.ids
	}
	m.first[len(nodes)] = int32(len(m.label))
	for c, nx := range nodes[0].edges {
		m.root[c] = nx
	}
}

// links computes fail and output links breadth first.
func (m *matcher) links(nodes []buildNode) {
	m.more[0] = -1
	queue := []int32{}
	for _, nx := range nodes[0].edges {
		m.fail[nx] = 0
		m.more[nx] = -1
		queue = append(queue, nx)
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for c, nx := range nodes[n].edges {
			f := m.fail[n]
			for f != 0 && m.edge(f, c) < 0 {
				f = m.fail[f]
			}
			if e := m.step(f, c); e != nx {
				m.fail[nx] = e
			}
			fl := m.fail[nx]
			if len(m.ids[fl]) > 0 {
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
			for _, id := range m.ids[o] {
				hit(id)
			}
		}
	}
}
