package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/internal/pgtest"
)

// pgScriptCmds are the testscript commands of the PostgreSQL scripts.
var pgScriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"pg":       cmdPG,
	"kmsuntil": cmdKMSUntil,
	"kmskey":   cmdKMSKey,
}

var pgClusters sync.Map // *testscript.TestScript → *pgtest.Cluster

// postgresCondition is [postgres]: a throwaway PostgreSQL cluster can be
// started. Under CI=true its absence fails the script instead.
func postgresCondition() (bool, error) {
	why := pgtest.Missing()
	if why != "" && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("CI=true but %s", why)
	}
	return why == "", nil
}

// cmdPG runs
//
//	pg database VAR  VAR is the URL of a new database on the cluster the tests share
//	pg start VAR     a throwaway cluster for the script; VAR is a new database's URL
//	pg stop          fast shutdown (clients disconnected)
//	pg restart       start it again, same port and data
//
// A script that stops PostgreSQL starts a cluster of its own, removed
// when the script ends; the shared one is never stopped.
func cmdPG(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: pg database VAR | start VAR | stop | restart")
	}
	if (args[0] == "start" || args[0] == "database") && len(args) == 2 {
		c, err := pgtest.SharedCluster()
		if args[0] == "start" {
			c, err = pgtest.New()
			ts.Check(err)
			pgClusters.Store(ts, c)
			ts.Defer(func() { c.Close(); pgClusters.Delete(ts) })
		}
		ts.Check(err)
		dsn, err := c.NewDatabase(context.Background())
		ts.Check(err)
		ts.Setenv(args[1], dsn)
		return
	}
	v, ok := pgClusters.Load(ts)
	if !ok {
		ts.Fatalf("pg: no cluster started")
	}
	c := v.(*pgtest.Cluster)
	switch {
	case args[0] == "stop" && len(args) == 1:
		ts.Check(c.Stop())
	case args[0] == "restart" && len(args) == 1:
		ts.Check(c.Start())
	default:
		ts.Fatalf("pg: bad arguments %q", args)
	}
}

// cmdKMSUntil runs "kmsuntil DURATION CRED.json ADDR KEYID OUTCOME": it
// calls GenerateDataKey on the key server at ADDR (one attempt each, no
// SDK retries) until the outcome is OUTCOME ("ok", or a KMS error code
// such as AccessDeniedException), and fails unless that happens within
// DURATION, counted from the command's start.
func cmdKMSUntil(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: kmsuntil DURATION CRED.json ADDR KEYID OUTCOME")
	}
	start := time.Now()
	limit, err := time.ParseDuration(args[0])
	ts.Check(err)
	c := kmsLoadClient(ts, args[1], args[2])
	var last string
	for {
		_, err := c.GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: aws.String(args[3]), KeySpec: types.DataKeySpecAes256})
		last = outcomeOf(err)
		if last == args[4] {
			ts.Logf("kmsuntil: %s after %v", last, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > limit {
			ts.Fatalf("kmsuntil: still %s after %v, want %s (%v)", last, limit, args[4], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcomeOf names a KMS call's outcome: "ok", the KMS error code, or
// "connection" for a failure without a KMS error.
func outcomeOf(err error) string {
	var ae smithy.APIError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return ae.ErrorCode()
	}
	return "connection"
}

// cmdKMSKey runs "kmskey CRED.json ADDR DisableKey|EnableKey KEYID": the
// key-state change through the key server at ADDR, which must succeed.
func cmdKMSKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: kmskey CRED.json ADDR DisableKey|EnableKey KEYID")
	}
	c, ctx, id := kmsLoadClient(ts, args[0], args[1]), context.Background(), aws.String(args[3])
	var err error
	switch args[2] {
	case "DisableKey":
		_, err = c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
	case "EnableKey":
		_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id})
	default:
		ts.Fatalf("kmskey: unknown operation %q", args[2])
	}
	ts.Check(err)
}
