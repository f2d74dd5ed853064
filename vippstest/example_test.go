package vippstest_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/vippslogin/vippslogin/vippstest"
)

func Example() {
	p, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// A client under test is configured with these three values.
	fmt.Println(strings.TrimPrefix(p.Issuer(), p.URL()))
	fmt.Println(p.ClientID())
	fmt.Println(p.ClientSecret() != "")
	// Output:
	// /access-management-1.0/access/
	// vippstest-client
	// true
}
