package main

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/rogpeppe/go-internal/testscript"
)

// kmsLoad is a client load against a key server: workers calling
// GenerateDataKey until stopped, recording the request IDs of successes
// and the failures.
type kmsLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	outcomes
}

// outcomes are what a client load saw: the request IDs its successes were
// answered with, and the calls that failed while it ran.
type outcomes struct {
	mu       sync.Mutex
	okIDs    []string
	failures []error
}

// add records the outcome of a GenerateDataKey call made under ctx (the
// load's) and reports whether it failed while the load ran.
func (o *outcomes) add(ctx context.Context, out *kms.GenerateDataKeyOutput, err error) (failed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		o.okIDs = append(o.okIDs, id)
	case ctx.Err() == nil:
		o.failures = append(o.failures, err)
		return true
	}
	return false
}

var kmsLoads sync.Map // *testscript.TestScript → *kmsLoad

func kmsLoadClient(ts *testscript.TestScript, credFile, addr string) *kms.Client {
	var cred struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(credFile)), &cred))
	return newKMSClient(addr, cred.ID, cred.Secret)
}

// newKMSClient is a KMS client of the key server at addr (host:port, plain
// HTTP) with the credential id and secret, without the SDK's retries: one
// attempt per call.
func newKMSClient(addr, id, secret string) *kms.Client {
	return kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
		Retryer:     retry.AddWithMaxAttempts(retry.NewStandard(), 1)})
}

// cmdKMSLoad runs
//
//	kmsload start CRED.json ADDR KEYID   8 workers of GenerateDataKey
//	kmsload wait N                       until N requests succeeded (30 s at most)
//	kmsload stop                         stops the workers; every failure must be a connection error
//	kmsload audited LOG.json             every success's request ID is in the audit records (audit show --json)
//	kmsload once CRED.json ADDR KEYID    one GenerateDataKey must succeed
func cmdKMSLoad(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: kmsload start|wait|stop|audited|once ...")
	}
	switch {
	case args[0] == "start" && len(args) == 4:
		kmsLoadStart(ts, kmsLoadClient(ts, args[1], args[2]), args[3])
	case args[0] == "once" && len(args) == 4:
		_, err := kmsLoadClient(ts, args[1], args[2]).GenerateDataKey(context.Background(),
			&kms.GenerateDataKeyInput{KeyId: aws.String(args[3]), KeySpec: types.DataKeySpecAes256})
		ts.Check(err)
	case args[0] == "wait" && len(args) == 2:
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		kmsLoadWait(ts, loadOf(ts), n)
	case args[0] == "stop" && len(args) == 1:
		kmsLoadStop(ts, loadOf(ts))
	case args[0] == "audited" && len(args) == 2:
		kmsLoadAudited(ts, loadOf(ts), ts.ReadFile(args[1]))
	default:
		ts.Fatalf("kmsload: bad arguments %q", args)
	}
}

func loadOf(ts *testscript.TestScript) *kmsLoad {
	l, ok := kmsLoads.Load(ts)
	if !ok {
		ts.Fatalf("kmsload: no load started")
	}
	return l.(*kmsLoad)
}

func kmsLoadStart(ts *testscript.TestScript, c *kms.Client, keyID string) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &kmsLoad{cancel: cancel}
	kmsLoads.Store(ts, l)
	for range 8 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				out, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyID), KeySpec: types.DataKeySpecAes256})
				l.record(ctx, out, err)
			}
		}()
	}
}

func (l *kmsLoad) record(ctx context.Context, out *kms.GenerateDataKeyOutput, err error) {
	if l.add(ctx, out, err) {
		time.Sleep(10 * time.Millisecond) // the server is gone: do not spin
	}
}

func kmsLoadWait(ts *testscript.TestScript, l *kmsLoad, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		got, failed := len(l.okIDs), len(l.failures)
		l.mu.Unlock()
		if failed > 0 {
			ts.Fatalf("kmsload: %d failures before the kill, the first: %v", failed, l.failures[0])
		}
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("kmsload: fewer than %d successes within 30s", n)
}

func kmsLoadStop(ts *testscript.TestScript, l *kmsLoad) {
	time.Sleep(200 * time.Millisecond) // let the workers meet the dead server
	l.cancel()
	l.wg.Wait()
	for _, err := range l.failures {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			ts.Fatalf("kmsload: a request failed with a KMS error, not a connection error: %v", err)
		}
	}
	ts.Logf("kmsload: %d successes, %d connection failures after the kill", len(l.okIDs), len(l.failures))
}

func kmsLoadAudited(ts *testscript.TestScript, l *kmsLoad, log string) {
	var records []struct {
		RequestID string `json:"request_id"`
		Decision  string `json:"decision"`
	}
	ts.Check(json.NewDecoder(strings.NewReader(log)).Decode(&records))
	allowed := map[string]bool{}
	for _, r := range records {
		if r.Decision == "Allow" {
			allowed[r.RequestID] = true
		}
	}
	for _, id := range l.okIDs {
		if id == "" || !allowed[id] {
			ts.Fatalf("kmsload: request %q succeeded without an audit record", id)
		}
	}
	ts.Logf("kmsload: all %d successful requests are audited", len(l.okIDs))
}
