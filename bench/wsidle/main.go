// Command wsidle measures what an idle WebSocket costs a server: it opens n
// WebSockets to url (a handshake each, then nothing), reads the resident
// memory of the server's process (and of its children: a pool's workers)
// before and after, and prints the difference per connection. Then it
// checks that every connection still echoes one message, and closes them.
//
//	go run ./bench/wsidle -url ws://127.0.0.1:8000/echo -pid $(pgrep -f 'wisp run') -n 10000
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	target := flag.String("url", "", "ws://host:port/path of an echo app")
	pid := flag.Int("pid", 0, "the server's process id (its children are counted too)")
	n := flag.Int("n", 10000, "connections")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "ws" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: wsidle -url ws://127.0.0.1:PORT/PATH -pid PID [-n N]")
		os.Exit(2)
	}
	before := rss(*pid)
	conns := make([]net.Conn, 0, *n)
	start := time.Now()
	for i := 0; i < *n; i++ {
		c, err := dial(u)
		if err != nil {
			fmt.Fprintf(os.Stderr, "connection %d: %v\n", i, err)
			break
		}
		conns = append(conns, c)
	}
	took := time.Since(start)
	time.Sleep(2 * time.Second) // let the server settle
	after := rss(*pid)
	fmt.Printf("%d idle WebSockets opened in %v: server RSS %d MiB -> %d MiB, %.1f KiB per connection\n",
		len(conns), took.Round(time.Millisecond), before>>10, after>>10, float64(after-before)/float64(len(conns)))
	ok := 0
	for _, c := range conns {
		if echo(c) {
			ok++
		}
		c.Close()
	}
	fmt.Printf("%d of %d still echoed a message\n", ok, len(conns))
}

// dial opens one WebSocket and leaves it idle.
func dial(u *url.URL) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(k[:]))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != 101 || br.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// echo sends "ping" (masked) and reads the echo's frame.
func echo(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	p := []byte("ping")
	m := [4]byte{1, 2, 3, 4}
	f := []byte{0x81, 0x80 | byte(len(p)), m[0], m[1], m[2], m[3]}
	for i, b := range p {
		f = append(f, b^m[i%4])
	}
	if _, err := c.Write(f); err != nil {
		return false
	}
	var h [6]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return false
	}
	return h[0] == 0x81 && h[1] == 4 && string(h[2:]) == "ping"
}

// rss is the resident memory in KiB of pid and its children.
func rss(pid int) int64 {
	total := int64(0)
	pids := []int{pid}
	if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(kids)) {
			if k, err := strconv.Atoi(f); err == nil {
				pids = append(pids, k)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				total += v
			}
		}
	}
	return total
}
