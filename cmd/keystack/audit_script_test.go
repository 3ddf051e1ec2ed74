package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keystack/keystack/audit"
)

// auditScriptCmds are the testscript commands of the audit scripts.
var auditScriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"forgeaudit": cmdForgeAudit,
	"tmpfs":      cmdTmpfs,
	"ext4":       cmdExt4,
	"fillfs":     cmdFillFS,
	"dropline":   cmdDropLine,
}

// cmdForgeAudit appends "forgeaudit LOG" a record that continues the log's
// last entry as an attacker without the audit key can: right seq, right
// prev link, and the hash of the old unkeyed chain, SHA-256(prev ‖ entry).
func cmdForgeAudit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: forgeaudit LOG")
	}
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var last audit.Entry
	ts.Check(json.Unmarshal(lines[len(lines)-1], &last))
	e := audit.Entry{Time: last.Time, Seq: last.Seq + 1, Type: audit.TypeDecision, Principal: "user:alice",
		Action: "keystack:Decrypt", Resource: "key/payments/v1", Decision: "Allow", Prev: last.Hash}
	canon, err := json.Marshal(e)
	ts.Check(err)
	prev, err := hex.DecodeString(last.Hash)
	ts.Check(err)
	h := sha256.Sum256(append(prev, canon...))
	e.Hash = hex.EncodeToString(h[:])
	line, err := json.Marshal(e)
	ts.Check(err)
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY|os.O_APPEND, 0)
	ts.Check(err)
	_, err = f.Write(append(line, '\n'))
	ts.Check(err)
	ts.Check(f.Close())
}

// cmdDropLine removes "dropline FILE N" the N-th line (1-based) of FILE.
func cmdDropLine(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: dropline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	data, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		ts.Fatalf("dropline: no line %d", n)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), bytes.Join(append(lines[:n-1:n-1], lines[n:]...), nil), 0o600))
}

// tmpfsCondition is the [tmpfs] condition: whether this process may mount
// a tmpfs. Under CI=true it must.
func tmpfsCondition() (bool, error) {
	dir, err := os.MkdirTemp("", "keystack-tmpfs-probe-")
	if err != nil {
		return false, err
	}
	defer os.Remove(dir)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("CI=true but cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
		}
		return false, nil
	}
	return true, exec.Command("umount", dir).Run()
}

// cmdTmpfs mounts "tmpfs DIR SIZE" a tmpfs of SIZE on DIR (guard the script
// with [tmpfs]) and unmounts it when the script ends.
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1]+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		ts.Fatalf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	ts.Defer(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			ts.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// ext4Condition is the [ext4] condition: whether this process may mount
// an ext4 image through a loop device. Under CI=true it must where the
// kernel offers loop devices.
func ext4Condition() (bool, error) {
	dir, err := os.MkdirTemp("", "keystack-ext4-probe-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	img := dir + "/img"
	err = mountExt4(img, "4M", dir+"/mnt")
	if err == nil {
		return true, exec.Command("umount", dir+"/mnt").Run()
	}
	if _, lerr := os.Stat("/dev/loop-control"); lerr == nil && os.Getenv("CI") == "true" {
		return false, fmt.Errorf("CI=true but cannot mount an ext4 image on a loop device: %v", err)
	}
	return false, nil
}

// mountExt4 makes img an ext4 filesystem of size and mounts it on dir.
func mountExt4(img, size, dir string) error {
	for _, argv := range [][]string{{"truncate", "-s", size, img}, {"mkfs.ext4", "-q", "-F", img}, {"mkdir", "-p", dir}, {"mount", "-o", "loop", img, dir}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", argv[0], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// cmdExt4 mounts "ext4 DIR SIZE" a fresh ext4 filesystem of SIZE on DIR
// (guard the script with [ext4]), from an image beside it, and unmounts it
// when the script ends.
func cmdExt4(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ext4 DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	if err := mountExt4(dir+".img", args[1], dir); err != nil {
		ts.Fatalf("ext4 on %s: %v", dir, err)
	}
	ts.Check(os.Chmod(dir, 0o700))
	ts.Defer(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			ts.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// cmdFillFS writes "fillfs FILE" until its filesystem is full.
func cmdFillFS(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fillfs FILE")
	}
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	buf := bytes.Repeat([]byte{'x'}, 4096)
	for n := len(buf); n > 0; {
		if _, err := f.Write(buf[:n]); err != nil {
			n /= 2
		}
	}
}

// withCmds adds extra to cmds.
func withCmds(extra, cmds map[string]func(ts *testscript.TestScript, neg bool, args []string)) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	for k, v := range extra {
		cmds[k] = v
	}
	return cmds
}
