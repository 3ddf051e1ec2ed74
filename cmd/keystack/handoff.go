package main

// The lite build (build tag keystack_lite; make install puts it on the
// PATH as keystack) links neither the AWS SDK nor package client, whose
// package initialisation would cost every command about 1.5 ms, nor pgx,
// the key server and the rotation daemon, nor the PKCS#11 library, so it
// needs no cgo and starts without the dynamic loader and libc. It hands
// off keystack server, keystack hsm, rotate run and daemon, the commands
// that may need AWS KMS, PKCS#11, a key server or a keystore in
// PostgreSQL, and those of an OS user only NSS names: it execs
// keystack-full, the complete build in its own directory, with the same
// arguments, environment and standard streams. The lite build decides
// before the command reads input or writes output (handoff_lite.go); the
// command then returns errNeedsFull through its usual cleanup, and runApp
// calls handOff.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

const (
	// fullName is the complete build's file name, next to the lite one.
	fullName = "keystack-full"
	// envHandedOff marks a process a lite build exec'd. Both builds
	// remove it from their environment at start; a lite build that found
	// it refuses to hand off again, so a lite binary installed as
	// keystack-full fails instead of exec'ing itself forever.
	envHandedOff = "KEYSTACK_HANDED_OFF"
)

// errNeedsFull is what a lite command returns to be run by keystack-full.
var errNeedsFull = errors.New("this command needs " + fullName + ", the complete build")

// errNoFull is a hand-off that failed: keystack-full is missing, not
// executable or not the complete build. Nothing was read or written.
var errNoFull = errors.New("this command needs AWS KMS, PKCS#11, a key server, PostgreSQL storage, keystack server, " +
	"the rotation runs or the C library's user and host lookups, which only " + fullName + " links, and it could not be run")

// errNotLinked is a lite build's stand-in used after all (the aws-kms
// and pkcs11 backends, PostgreSQL storage, keystack server): a command that should
// have been handed off was not.
var errNotLinked = errors.New("not linked into this lite build (a bug: the command should have been handed to " + fullName + ")")

// handedOff is whether a lite build exec'd this process; see envHandedOff.
var handedOff bool

// takeHandOffMarker sets handedOff from the environment and removes the
// marker, so that processes this one starts do not inherit it.
func takeHandOffMarker() {
	_, handedOff = os.LookupEnv(envHandedOff)
	os.Unsetenv(envHandedOff)
}

// handOff replaces this process with keystack-full run with argv; it
// returns only when that failed.
func handOff(argv []string) error {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("%w: cannot locate this executable: %v", errNoFull, err)
	}
	full := filepath.Join(filepath.Dir(exe), fullName)
	if handedOff {
		return fmt.Errorf("%w: %s handed it back: it is a lite build, not the complete one", errNoFull, full)
	}
	err = syscall.Exec(full, argv, append(os.Environ(), envHandedOff+"=1"))
	return fmt.Errorf("%w: %s: %v", errNoFull, full, err)
}
