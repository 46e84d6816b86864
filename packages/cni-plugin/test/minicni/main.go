// minicni: a CNI runtime for the tests, on Debian's libcni 1.1.2 (the library podman 4.3 links):
// it loads a conflist, injects name/cniVersion/runtimeConfig/prevResult, caches results and
// chains plugins exactly as libcni does. Built by the tests with GO111MODULE=off from
// golang-github-appc-cni-dev (Debian 12's source package of github.com/containernetworking/cni).
//
// Usage: minicni add|check|del CONFLIST CONTAINERID NETNS IFNAME CACHEDIR CNI_PATH [CAPS_JSON] [K=V;K=V]
// add prints the final result as JSON; any failure goes to stderr with exit 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 8 {
		fail(fmt.Errorf("usage: minicni add|check|del CONFLIST CONTAINERID NETNS IFNAME CACHEDIR CNI_PATH [CAPS_JSON] [ARGS]"))
	}
	cmd, file, cid, netns, ifname, cache, path := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7]
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		fail(err)
	}
	cfg := libcni.NewCNIConfigWithCacheDir(strings.Split(path, ":"), cache, nil)
	rt := &libcni.RuntimeConf{ContainerID: cid, NetNS: netns, IfName: ifname}
	if len(os.Args) > 8 && os.Args[8] != "" {
		if err := json.Unmarshal([]byte(os.Args[8]), &rt.CapabilityArgs); err != nil {
			fail(err)
		}
	}
	if len(os.Args) > 9 && os.Args[9] != "" {
		for _, kv := range strings.Split(os.Args[9], ";") {
			p := strings.SplitN(kv, "=", 2)
			if len(p) == 2 {
				rt.Args = append(rt.Args, [2]string{p[0], p[1]})
			}
		}
	}
	ctx := context.Background()
	switch cmd {
	case "add":
		res, err := cfg.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	case "check":
		if err := cfg.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cfg.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}
