// Command jobs-storage-e2e runs the parts of cert-manager that the chart's certManager path needs, as host processes
// against a local control plane (scripts/control-plane/cert-manager.ts starts and stops them):
//
//	jobs-storage-e2e controller --kubeconfig FILE --ready-address 127.0.0.1:PORT [--v N]
//	jobs-storage-e2e cainjector --kubeconfig FILE --ready-address 127.0.0.1:PORT [--v N]
//
// controller: SelfSigned and CA Issuers, Certificate issuance and renewal (cert-manager's own control loops, the
// ones its controller binary runs for these kinds). cainjector: caBundle injection into
// ValidatingWebhookConfigurations annotated cert-manager.io/inject-ca-from. GET /readyz on --ready-address answers
// 200 once the process's informer caches have synced, 503 before.
//
// cert-manager's cmd/ modules are not on the Go module proxy, so this is a main of our own over its pkg/ packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	// The control loops below register themselves with controllerpkg.Register in init(); the issuer packages
	// register their issuer types with the issuer factory the same way.
	certrequestsapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	certrequestsca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	certrequestsselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// The control loops the controller runs: what a namespaced Issuer (SelfSigned or CA) and its Certificates need.
var enabledControllers = []string{
	issuers.ControllerName,
	trigger.ControllerName,
	keymanager.ControllerName,
	requestmanager.ControllerName,
	issuing.ControllerName,
	readiness.ControllerName,
	revisionmanager.ControllerName,
	certrequestsapprover.ControllerName,
	certrequestsselfsigned.CRControllerName,
	certrequestsca.CRControllerName,
}

const workersPerController = 5

type options struct {
	kubeconfig   string
	readyAddress string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: jobs-storage-e2e controller|cainjector --kubeconfig FILE --ready-address HOST:PORT [--v N]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	var opts options
	fs.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	fs.StringVar(&opts.readyAddress, "ready-address", "127.0.0.1:0", "address of the /readyz endpoint")
	klog.InitFlags(fs)
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if opts.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig is required")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := klog.NewKlogr().WithName(mode)
	ctrl.SetLogger(log)
	ctx = logf.NewContext(ctx, log)

	var ready atomic.Bool
	srv, err := serveReadyz(opts.readyAddress, &ready)
	if err != nil {
		log.Error(err, "cannot listen for /readyz", "address", opts.readyAddress)
		os.Exit(1)
	}
	defer func() { _ = srv.Close() }()

	switch mode {
	case "controller":
		err = runController(ctx, opts, &ready)
	case "cainjector":
		err = runCAInjector(ctx, opts, &ready)
	default:
		err = fmt.Errorf("unknown subcommand %q (expected controller or cainjector)", mode)
	}
	if err != nil {
		log.Error(err, "exiting")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// serveReadyz answers GET /readyz with 200 once ready is set; it logs the address it listens on.
func serveReadyz(address string, ready *atomic.Bool) (*http.Server, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready.Load() {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	klog.InfoS("serving /readyz", "address", ln.Addr().String())
	return srv, nil
}

// runController builds cert-manager's controller context, the enabled control loops, starts the shared informers
// they registered and blocks until ctx ends and every loop has returned.
func runController(ctx context.Context, opts options, ready *atomic.Bool) error {
	log := logf.FromContext(ctx)
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         opts.kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: "cert-manager"},
		CertificateOptions: controllerpkg.CertificateOptions{
			// cert-manager's defaults (its controller's --certificate-request-*-backoff-duration flags).
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	known := controllerpkg.Known()
	names := append([]string(nil), enabledControllers...)
	sort.Strings(names)
	loops := make(map[string]controllerpkg.Interface, len(names))
	for _, name := range names {
		constructor, ok := known[name]
		if !ok {
			return fmt.Errorf("control loop %q is not registered", name)
		}
		loop, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("constructing control loop %q: %w", name, err)
		}
		loops[name] = loop
	}
	// The loops share the informer factories of this context: every informer they need is registered by now.
	base, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building the base context: %w", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(loops))
	for name, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("starting control loop", "controller", name)
			if err := loop.Run(workersPerController, ctx); err != nil {
				errs <- fmt.Errorf("control loop %q: %w", name, err)
			}
		}()
	}
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.SharedInformerFactory.Start(ctx.Done())
	go func() {
		kube := base.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done())
		cm := base.SharedInformerFactory.WaitForCacheSync(ctx.Done())
		for _, synced := range []bool{allSynced(kube), allSynced(cm)} {
			if !synced {
				return
			}
		}
		ready.Store(true)
		log.Info("informer caches synced; ready", "controllers", names)
	}()
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func allSynced[K comparable](m map[K]bool) bool {
	for _, ok := range m {
		if !ok {
			return false
		}
	}
	return true
}

// runCAInjector runs cert-manager's CA injector for ValidatingWebhookConfigurations on controller-runtime, with the
// Certificate data source (cert-manager.io/inject-ca-from), as its cainjector binary sets it up.
func runCAInjector(ctx context.Context, opts options, ready *atomic.Bool) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading %s: %w", opts.kubeconfig, err)
	}
	restConfig = util.RestConfigWithUserAgent(restConfig, "cainjector")
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{ReaderFailOnMissingInformer: true},
		// Secrets are watched by metadata only and read directly, as cert-manager's cainjector does.
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	err = cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.ValidatingWebhookConfigurationName: true,
		},
	})
	if err != nil {
		return fmt.Errorf("registering the injectors: %w", err)
	}
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if mgr.GetCache().WaitForCacheSync(ctx) {
			ready.Store(true)
			logf.FromContext(ctx).Info("informer caches synced; ready")
		}
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		return fmt.Errorf("adding the readiness runnable: %w", err)
	}
	return mgr.Start(ctx)
}
