// Command go-peer is the Go baseline of the webhook benchmarks: a minimal controller-runtime validating webhook
// that decodes each AdmissionReview and allows it with a warning, as toolforge-jobs-storage answers a direct write
// of a CronJob by a tool. It serves TLS (h2 and HTTP/1.1, Go's defaults) on 127.0.0.1:-port with tls.crt and
// tls.key from -cert-dir, prints "PORT <n>" once it accepts connections, and runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const toolNamespacePrefix = "tool-"

// directWrite allows the write and warns the way toolforge-jobs-storage does for a workload written without the
// jobs API.
func directWrite(_ context.Context, req admission.Request) admission.Response {
	if !strings.HasPrefix(req.Namespace, toolNamespacePrefix) {
		return admission.Allowed("")
	}
	return admission.Allowed("").WithWarnings(fmt.Sprintf(
		"%s %q was %sd directly in Kubernetes, not through the jobs API; use 'toolforge jobs' to manage jobs",
		req.Kind.Kind, req.Name, strings.ToLower(string(req.Operation))))
}

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	port := flag.Int("port", 0, "port to listen on (127.0.0.1)")
	flag.Parse()
	if *certDir == "" || *port <= 0 {
		fmt.Fprintln(os.Stderr, "usage: go-peer -cert-dir DIR -port N")
		os.Exit(2)
	}
	ctrllog.SetLogger(logr.Discard())

	server := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: *port, CertDir: *certDir})
	server.Register("/validate/record-direct-writes", &admission.Webhook{Handler: admission.HandlerFunc(directWrite)})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errs := make(chan error, 1)
	go func() { errs <- server.Start(ctx) }()

	// StartedChecker completes a TLS handshake, so the server logs no aborted connection for it.
	started := server.StartedChecker()
	for started(nil) != nil {
		select {
		case err := <-errs:
			fmt.Fprintln(os.Stderr, "go-peer:", err)
			os.Exit(1)
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Printf("PORT %d\n", *port)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "go-peer:", err)
		os.Exit(1)
	}
}
