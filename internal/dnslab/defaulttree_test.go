package dnslab

import (
	"fmt"
	"testing"

	mdns "github.com/miekg/dns"
)

// TestDefaultTreeShape checks, without running anything, that the standard tree
// is valid and covers what it promises: both signers with every algorithm, both
// key shapes, every kind of denial and damage, a proxy, and a question for every
// zone.
func TestDefaultTreeShape(t *testing.T) {
	zones, cases := DefaultTree()
	tr, err := newTree(zones)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	mark := func(format string, args ...any) { seen[fmt.Sprintf(format, args...)] = true }
	for _, z := range tr.zones {
		if z.Unsigned {
			mark("unsigned below %s", tr.byName[tr.parent[z.Name]].Denial)
			continue
		}
		mark("%s %d", z.Signer, z.Algorithm)
		mark("%s csk %v", z.Signer, z.CSK)
		mark("%s %s", z.Signer, z.Denial)
		b := z.Break
		for name, on := range map[string]bool{
			"expired": b.ExpiredSigs, "future": b.FutureSigs, "corrupt": b.CorruptSig != "",
			"dropsig": b.DropSig != "", "wrongds": b.WrongDS, "stripkey": b.StripDNSKEY,
			"unsigned": len(b.AddUnsigned) > 0, "proxy": z.Rewrite != nil,
			"iterations above 150": z.Iterations > 150,
		} {
			if on {
				mark("damage %s", name)
			}
		}
	}
	var want []string
	for _, s := range []Signer{LDNS, BIND} {
		for _, a := range Algorithms {
			want = append(want, fmt.Sprintf("%s %d", s, a))
		}
		want = append(want, fmt.Sprintf("%s csk true", s), fmt.Sprintf("%s csk false", s))
		want = append(want, fmt.Sprintf("%s %s", s, NSEC), fmt.Sprintf("%s %s", s, NSEC3), fmt.Sprintf("%s %s", s, NSEC3OptOut))
	}
	for _, d := range []Denial{NSEC, NSEC3, NSEC3OptOut} {
		want = append(want, fmt.Sprintf("unsigned below %s", d))
	}
	for _, d := range []string{"expired", "future", "corrupt", "dropsig", "wrongds", "stripkey", "unsigned", "proxy", "iterations above 150"} {
		want = append(want, "damage "+d)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("DefaultTree lacks %s", w)
		}
	}

	asked := map[string]map[Status]bool{}
	for _, c := range cases {
		if c.Want != Secure && c.Want != Insecure && c.Want != Bogus {
			t.Errorf("case %s %s wants %q", c.Name, mdns.TypeToString[c.Type], c.Want)
		}
		if c.Note == "" {
			t.Errorf("case %s %s has no note", c.Name, mdns.TypeToString[c.Type])
		}
		zone := closestZone(tr, mdns.CanonicalName(c.Name))
		if asked[zone] == nil {
			asked[zone] = map[Status]bool{}
		}
		asked[zone][c.Want] = true
	}
	for _, z := range tr.zones {
		if len(asked[z.Name]) == 0 {
			t.Errorf("no case asks about zone %s", z.Name)
		}
		if (!z.Break.zero() || z.Rewrite != nil) && !asked[z.Name][Bogus] {
			t.Errorf("damaged zone %s has no bogus case", z.Name)
		}
	}
}

// closestZone returns the lab zone a name falls in (a DS question belongs to the
// parent, but counting it for the child is close enough here).
func closestZone(tr *tree, name string) string {
	for {
		if _, ok := tr.byName[name]; ok {
			return name
		}
		if name == "." {
			return ""
		}
		i, _ := mdns.NextLabel(name, 0)
		name = name[i:]
		if name == "" {
			name = "."
		}
	}
}
