// Fixture generator, not part of the build or of CI: prints, for each revision name given,
// the hash Flagger 1.44 stores in a Knative Canary's status.lastAppliedSpec and
// status.lastPromotedSpec (its ComputeHash of status.latestCreatedRevisionName: spew "%#v",
// FNV-1a 32, decimal, apimachinery's SafeEncodeString), written from Flagger's algorithm.
//
// apt-get install golang-go golang-github-davecgh-go-spew-dev
// GOPATH=/usr/share/gocode GO111MODULE=off go run main.go NAME... > ../revision-hashes.tsv
package main

import (
	"fmt"
	"hash/fnv"
	"os"

	"github.com/davecgh/go-spew/spew"
)

// k8s.io/apimachinery/pkg/util/rand.SafeEncodeString
const alphanums = "bcdfghjklmnpqrstvwxz2456789"

func safeEncode(s string) string {
	r := make([]byte, len(s))
	for i, b := range []rune(s) {
		r[i] = alphanums[(int(b) % len(alphanums))]
	}
	return string(r)
}

func computeHash(spec interface{}) string {
	hasher := fnv.New32a()
	printer := spew.ConfigState{Indent: " ", SortKeys: true, DisableMethods: true, SpewKeys: true}
	printer.Fprintf(hasher, "%#v", spec)
	return safeEncode(fmt.Sprint(hasher.Sum32()))
}

func main() {
	for _, name := range os.Args[1:] {
		fmt.Printf("%s\t%s\n", name, computeHash(name))
	}
}
