package locmap

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestReplace(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	old := ref{}
	for i := 0; i < 5000; i++ {
		old[fmt.Sprintf("k%06d", rng.IntN(20000))] = randValue(rng)
	}
	m := buildTestMap(t, old, 512, 1)
	// Pending overlay writes in m are discarded too.
	for i := 0; i < 300; i++ {
		m.Put([]byte(fmt.Sprintf("k%06d", rng.IntN(20000))), []byte("overlay"))
	}
	next := ref{}
	for i := 0; i < 4000; i++ {
		next[fmt.Sprintf("k%06d", rng.IntN(20000))] = randValue(rng)
	}
	src := buildTestMap(t, next, 512, 1)
	src.Put([]byte("zz"), []byte("in src's overlay"))
	next["zz"] = "in src's overlay"
	m.Replace(src)
	check(t, m, next)
	checkInvariants(t, m)

	// Both stay independent, writable maps.
	m.Put([]byte("a"), []byte("1"))
	m.Delete([]byte("zz"))
	src.Put([]byte("b"), []byte("2"))
	after := ref{"a": "1"}
	for k, v := range next {
		after[k] = v
	}
	delete(after, "zz")
	check(t, m, after)
	next["b"] = "2"
	check(t, src, next)

	// Replacing with an empty map empties m.
	m.Replace(New())
	check(t, m, ref{})
}
