package mtasts_test

import (
	"fmt"

	"mxward/internal/mtasts"
)

func ExampleParsePolicy() {
	p, err := mtasts.ParsePolicy([]byte("version: STSv1\r\nmode: enforce\r\nmx: *.example.net\r\nmax_age: 604800\r\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Mode, p.MaxAge)
	fmt.Println(p.Matches("mx1.example.net"), p.Matches("a.b.example.net"), p.Matches("example.net"))
	// Output:
	// enforce 168h0m0s
	// true false false
}

func ExampleParseRecord() {
	r, err := mtasts.ParseRecord([]string{"v=spf1 -all", "v=STSv1; id=20160831085700Z;"})
	fmt.Println(r.ID, err)
	// Output: 20160831085700Z <nil>
}
