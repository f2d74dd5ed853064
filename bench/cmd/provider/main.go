// Command provider runs the mock Vipps MobilePay login provider of package
// vippstest as a process of its own, for the benchmark in package bench, so
// that the provider's CPU time is not counted as the relying party's.
//
// It approves every login at once (vippstest.Config.AutoApprove) and writes
// to standard output, one per line:
//
//	issuer <issuer URL>
//	client_id <client id>
//	client_secret <client secret>
//	ready
//
// Then it reads commands from standard input, one per line:
//
//	redirect <URI>   registers a redirect URI (Provider.AddRedirectURI),
//	                 then answers "ok <URI>"
//
// It stops when standard input ends, or on SIGINT or SIGTERM.
package main

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vippslogin/vippslogin/vippstest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
}

func run() error {
	p, err := vippstest.New(vippstest.Config{AutoApprove: true})
	if err != nil {
		return err
	}
	defer p.Close()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "issuer %s\nclient_id %s\nclient_secret %s\nready\n", p.Issuer(), p.ClientID(), p.ClientSecret())
	if err := out.Flush(); err != nil {
		return err
	}

	done := make(chan error, 1)
	go func() { done <- serveCommands(p, out) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-done:
		return err
	case <-sig:
		return nil
	}
}

// serveCommands carries out the commands on standard input until it ends.
func serveCommands(p *vippstest.Provider, out *bufio.Writer) error {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(in.Text()), " ")
		switch cmd {
		case "":
		case "redirect":
			u, err := url.Parse(arg)
			if err != nil || !u.IsAbs() {
				return fmt.Errorf("redirect %q: not an absolute URI", arg)
			}
			p.AddRedirectURI(arg)
			fmt.Fprintf(out, "ok %s\n", arg)
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return in.Err()
}
