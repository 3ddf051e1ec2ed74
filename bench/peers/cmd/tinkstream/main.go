// Command tinkstream encrypts and decrypts a file with Tink's streaming AEAD
// (AES256_GCM_HKDF_1MB), with the same I/O pattern as keystack: read the
// input file in 128 KiB reads, write the output file in 32 KiB pieces (see
// asyncWriter in cmd/keystack for why that size). It exists only so that
// make bench can measure keystack against Tink in the same run.
//
//	tinkstream keygen KEYSET
//	tinkstream encrypt|decrypt KEYSET IN OUT   (OUT - is stdout)
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"
)

const (
	ioSize    = 128 << 10
	writeSize = 32 << 10
)

// pieces writes to w in writes of at most writeSize bytes, as keystack
// does: bufio.Writer hands a write larger than its buffer (Tink's 1 MiB
// segments) straight through.
type pieces struct{ w io.Writer }

func (p pieces) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		m, err := p.w.Write(b[:min(len(b), writeSize)])
		n += m
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tinkstream:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "keygen":
		return keygen(args[1])
	case len(args) == 4 && (args[0] == "encrypt" || args[0] == "decrypt"):
		return crypt(args[0] == "encrypt", args[1], args[2], args[3])
	}
	return fmt.Errorf("usage: tinkstream keygen KEYSET | encrypt|decrypt KEYSET IN OUT")
}

func keygen(path string) error {
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(f)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func crypt(encrypt bool, ksPath, inPath, outPath string) error {
	ks, err := os.Open(ksPath)
	if err != nil {
		return err
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(ks))
	ks.Close()
	if err != nil {
		return err
	}
	a, err := streamingaead.New(h)
	if err != nil {
		return err
	}
	in, err := os.Open(inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	out := os.Stdout
	if outPath != "-" {
		if out, err = os.Create(outPath); err != nil {
			return err
		}
	}
	if err := stream(a, encrypt, in, out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func stream(a tink.StreamingAEAD, encrypt bool, in io.Reader, out io.Writer) error {
	bw := bufio.NewWriterSize(pieces{out}, ioSize)
	buf := make([]byte, ioSize)
	if encrypt {
		w, err := a.NewEncryptingWriter(bw, nil)
		if err != nil {
			return err
		}
		if _, err := io.CopyBuffer(w, struct{ io.Reader }{in}, buf); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		return bw.Flush()
	}
	r, err := a.NewDecryptingReader(bufio.NewReaderSize(in, ioSize), nil)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(bw, struct{ io.Reader }{r}, buf); err != nil {
		return err
	}
	return bw.Flush()
}
