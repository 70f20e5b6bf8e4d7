#include "daemon.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>

#include "alerts/dispatcher.h"
#include "alerts/engine.h"
#include "alerts/receivers.h"
#include "collector/code_identity.h"
#include "collector/oncpu_sampler.h"
#include "collector/proc_events.h"
#include "collector/python_code.h"
#include "collector/python_interpreter.h"
#include "collector/statsd.h"
#include "collector/symbolizer.h"
#include "collector/tracefs.h"
#include "collector/watched_map.h"
#include "common/log.h"
#include "daemon/alert_metrics.h"
#include "daemon/deploy_tracker.h"
#include "daemon/health.h"
#include "daemon/latency_metrics.h"
#include "daemon/proc_reader.h"
#include "daemon/probe_set.h"
#include "daemon/process_registry.h"
#include "daemon/python_tracker.h"
#include "daemon/window_builder.h"
#include "daemon/window_clock.h"
#include "dashboard/api.h"
#include "dashboard/assets.h"
#include "dashboard/query_pool.h"
#include "dashboard/server.h"
#include "storage/embedded_postgres.h"
#include "storage/rollups.h"
#include "storage/window_writer.h"

namespace perfwatch::daemon {
namespace {

using namespace std::chrono;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

int checked(int fd, const char* what) {
  if (fd < 0) throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
  return fd;
}

collector::ProcessKey to_collector(ProcessKey k) { return {k.pid, k.generation}; }

// Processes of every target watched at once (the BPF `watched` map's size).
constexpr std::uint32_t kWatchedProcesses = 8192;

// Routes the registry's decisions to the BPF watched map, the symbolizer, the Python tracker and the
// per-process probes. The map is absent when it could not be created and the tracker when the CPU sampler
// could not start; the probe set is the running one, which a reload may replace (hence the reference to
// its pointer).
class SamplerSink final : public ProcessSink {
 public:
  SamplerSink(collector::WatchedMap* watched, collector::Symbolizer& symbolizer, PythonTracker* python,
              const std::vector<config::Target>& targets, std::unique_ptr<ProbeSet>& probes)
      : watched_(watched), symbolizer_(symbolizer), python_(python), targets_(targets), probes_(probes) {}

  void watch(ProcessKey key, std::size_t target, bool profiled) override {
    if (watched_)
      if (auto r = watched_->watch(key.pid, key.generation, static_cast<std::uint32_t>(target), profiled); !r)
        log::warn("cannot watch process", {{"pid", key.pid}, {"error", r.error().message}});
    // Symbols and Python frames are only for CPU samples, which unprofiled processes have none of.
    if (profiled) {
      if (auto r = symbolizer_.add_process(to_collector(key)); !r)
        log::debug("process gone before its maps were read", {{"pid", key.pid}, {"error", r.error().message}});
      if (python_ && target < targets_.size()) python_->watch(key, targets_[target].python);
    }
    probes_->watch(key.pid, static_cast<std::uint32_t>(target));
  }
  void unwatch(ProcessKey key) override {
    if (watched_) watched_->unwatch(key.pid);
    probes_->unwatch(key.pid);
  }
  void retire(ProcessKey key) override {
    symbolizer_.retire_process(to_collector(key));
    if (python_) python_->retire(key);
    probes_->unwatch(key.pid);
  }
  // The symbolizers release all retired processes at once after each window.
  void release(ProcessKey) override {}

 private:
  collector::WatchedMap* watched_;
  collector::Symbolizer& symbolizer_;
  PythonTracker* python_;
  const std::vector<config::Target>& targets_;
  std::unique_ptr<ProbeSet>& probes_;
};

class SymbolizerResolver final : public FrameResolver {
 public:
  SymbolizerResolver(collector::Symbolizer& s, collector::PythonSymbolizer& python) : s_(s), python_(python) {}
  std::vector<NativeFrame> user(ProcessKey p, std::span<const std::uint64_t> ips) override {
    std::vector<bool> frame_pointers;
    auto frames = s_.symbolize_user(to_collector(p), ips, &frame_pointers);
    const collector::PythonInterpreter* interpreter = python_.interpreter(to_collector(p));
    std::vector<NativeFrame> out;
    out.reserve(frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
      bool in_interpreter = interpreter && frames[i].module == interpreter->binary;
      bool eval_loop = in_interpreter && frames[i].name == "_PyEval_EvalFrameDefault";
      out.push_back({std::move(frames[i]), frame_pointers[i], in_interpreter, eval_loop});
    }
    return out;
  }
  std::vector<profile::Frame> kernel(std::span<const std::uint64_t> ips) override { return s_.symbolize_kernel(ips); }
  bool runs_python(ProcessKey p) override { return python_.interpreter(to_collector(p)) != nullptr; }
  std::vector<profile::Frame> python(ProcessKey p, std::span<const py_frame> frames) override {
    return python_.symbolize(to_collector(p), frames);
  }

 private:
  collector::Symbolizer& s_;
  collector::PythonSymbolizer& python_;
};

// The dashboard's bearer token: the first line of token_file. A file that cannot be read, that others can
// read, or that is empty is a start-up error rather than an open dashboard.
std::string read_token(const std::string& path) {
  if (path.empty()) return "";
  auto token = dashboard::read_token_file(path);
  if (!token) throw std::runtime_error("dashboard.token_file: " + token.error().message);
  return *token;
}

std::string hostname_or(const std::string& configured) {
  if (!configured.empty()) return configured;
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

class Daemon {
 public:
  Daemon(config::Config cfg, std::string config_path) : cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

  int run() {
    start();
    loop();
    stop();
    return 0;
  }

 private:
  void start() {
    // Before any thread exists (the storage writer, libpq's): every thread inherits the mask, so the
    // signals reach only the signalfd instead of killing the process through a thread that lets them in.
    block_signals();
    log::set_level(cfg_.log_level);
    log::route_libbpf();
    host_ = hostname_or(cfg_.host);

    // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
    rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MEMLOCK, &unlimited);
    if (auto r = collector::ensure_tracefs_mounted(); !r)
      log::warn("tracefs unavailable; tracepoint-based probes may fail", {{"error", r.error().message}});

    start_storage();
    // From here on, a probe family that cannot load or attach costs only what it measures.
    start_watched_map();
    start_sampler();
    start_process_events();
    start_dashboard();

    symbolizer_ = std::make_unique<collector::Symbolizer>();
    python_symbolizer_ = std::make_unique<collector::PythonSymbolizer>(process_memory_);
    if (sampler_)
      python_ = std::make_unique<PythonTracker>(*sampler_, *python_symbolizer_, python_detector_, cfg_.sampling.window);
    probes_ = ProbeSet::build(cfg_, watched_map_fd(), bpf_unavailable_, /*first=*/true);
    apply_statsd();
    sink_ = std::make_unique<SamplerSink>(watched_.get(), *symbolizer_, python_.get(), cfg_.targets, probes_);
    registry_ = std::make_unique<ProcessRegistry>(proc_, *sink_, getpid());
    apply_targets();
    code_watcher_ = std::make_unique<CodeWatcher>(code_reader_);
    deploys_ = std::make_unique<DeployTracker>(cfg_.state_dir + "/deploys.json");

    window_clock_.emplace(cfg_.sampling.window, ClockReading::now());
    setup_fds();
    const std::string status = publish_probe_states();
    sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
    log::info("perfwatchd started", {{"config", config_path_}, {"host", host_},
                                     {"targets", cfg_.targets.size()}, {"watched", registry_->live_count()},
                                     {"frequency_hz", cfg_.sampling.frequency_hz},
                                     {"window", format_duration(cfg_.sampling.window)}, {"probes", status}});
  }

  // The map of watched processes every BPF collector shares; without it (BPF unusable) only StatsD measures.
  void start_watched_map() {
    auto watched = collector::WatchedMap::create(kWatchedProcesses);
    if (!watched) {
      bpf_unavailable_ = "cannot create the BPF watched map: " + watched.error().message;
      log::error("no BPF program can run; only StatsD is measured", {{"error", bpf_unavailable_}});
      return;
    }
    watched_ = std::move(*watched);
  }

  // The CPU sampler; without it (the kernel refused its program or its perf events) everything else runs.
  void start_sampler() {
    collector::OncpuOptions options;
    options.frequency_hz = cfg_.sampling.frequency_hz;
    options.python_max_depth = cfg_.sampling.python_max_depth;
    auto sampler = watched_map_fd() >= 0 ? collector::OncpuSampler::create(watched_map_fd(), options)
                                         : Result<std::unique_ptr<collector::OncpuSampler>>(make_error(bpf_unavailable_));
    if (!sampler) {
      log::error("the CPU sampler cannot start; no CPU stacks are sampled, everything else is measured",
                 {{"error", sampler.error().message}});
      host_states_.set(profile::ProbeFamily::cpu_sampler, profile::ProbeStatus::failed, sampler.error().message);
      return;
    }
    sampler_ = std::move(*sampler);
    host_states_.set(profile::ProbeFamily::cpu_sampler, profile::ProbeStatus::running,
                     std::to_string(cfg_.sampling.frequency_hz) + " Hz per CPU (perf_event cpu-clock)");
  }

  // Process events; without them the registry's /proc rescan at every window finds new processes (up
  // to a window late) and children of watched processes.
  void start_process_events() {
    auto events = watched_map_fd() >= 0 ? collector::ProcEvents::create(watched_map_fd())
                                        : Result<std::unique_ptr<collector::ProcEvents>>(make_error(bpf_unavailable_));
    if (!events) {
      log::error("process events cannot start; processes are found by a /proc rescan every window instead",
                 {{"error", events.error().message}});
      host_states_.set(profile::ProbeFamily::process_events, profile::ProbeStatus::failed,
                       events.error().message + "; processes are found by a /proc rescan every window instead");
      return;
    }
    events_ = std::move(*events);
    host_states_.set(profile::ProbeFamily::process_events, profile::ProbeStatus::running,
                     "exec, fork and exit from raw tracepoints");
  }

  int watched_map_fd() const { return watched_ ? watched_->fd() : -1; }

  // Python frames come from the sampler's walker: they run where it does and some target asks for them.
  profile::ProbeState python_stacks_state() const {
    const profile::ProbeFamily family = profile::ProbeFamily::python_stacks;
    if (std::none_of(cfg_.targets.begin(), cfg_.targets.end(),
                     [](const config::Target& t) { return t.profile && t.python != config::PythonMode::off; }))
      return {family, profile::ProbeStatus::off, ""};
    if (!sampler_)
      return {family, profile::ProbeStatus::failed,
              "the CPU sampler, which walks them, cannot start: " + host_states_[profile::ProbeFamily::cpu_sampler].detail};
    return {family, profile::ProbeStatus::running, "CPython 3.10 to 3.13, up to " +
                                                       std::to_string(cfg_.sampling.python_max_depth) + " frames"};
  }

  profile::ProbeStates probe_states() const {
    profile::ProbeStates states = host_states_;
    states[profile::ProbeFamily::python_stacks] = python_stacks_state();
    probes_->report(states);
    for (const auto& [family, note] : kept_at_reload_) states[family].detail += note;
    return states;
  }

  // Hands the probe families' states to /metrics; returns a summary for systemd's status line.
  std::string publish_probe_states() {
    const profile::ProbeStates states = probe_states();
    health_->set_probes(states.list());
    std::string failed;
    for (const profile::ProbeState& p : states.list())
      if (p.status == profile::ProbeStatus::failed) failed += (failed.empty() ? "" : ", ") + std::string(profile::to_string(p.family));
    return failed.empty() ? "sampling" : "running without " + failed;
  }

  void start_storage() {
    std::string uri = cfg_.storage.postgres;
    if (uri.empty()) {
      storage::EmbeddedOptions options;
      options.state_dir = cfg_.state_dir;
      embedded_ = storage::EmbeddedPostgres::start(options);
      uri = embedded_->uri();
    }
    database_ = {uri, cfg_.storage.password_file};
    start_alerts();
    storage::WriterOptions options;
    options.connect = database_;
    options.spool_dir = cfg_.state_dir + "/spool";
    options.spool_max_bytes = cfg_.storage.spool_max_bytes;
    options.retention = cfg_.storage.retention;
    // The alert rules read what is stored: evaluate as soon as a window is.
    options.on_written = [this](const profile::WindowProfile&) { engine_->wake(); };
    writer_ = std::make_unique<storage::WindowWriter>(options, storage::PgStore::factory(options.connect));
    rollups_ = std::make_unique<storage::RollupWorker>(database_);
  }

  void start_dashboard() {
    health_ = std::make_unique<HealthMetrics>(PERFWATCH_VERSION, host_, writer_.get());
    alert_metrics_ = std::make_unique<AlertMetrics>(engine_.get(), dispatcher_.get());
    latency_metrics_ = std::make_unique<LatencyMetrics>();
    // One connection per serving thread at most: a request holds one while it queries.
    storage::ConnectOptions queries = database_;
    queries.statement_timeout = duration_cast<milliseconds>(cfg_.dashboard.query_timeout);
    query_pool_ = std::make_unique<dashboard::QueryPool>(dashboard::QueryPool::connect_with(queries),
                                                          cfg_.dashboard.threads, seconds(5));
    dashboard::ApiOptions api_options;
    api_options.host = host_;
    api_options.version = PERFWATCH_VERSION;
    api_options.frequency_hz = cfg_.sampling.frequency_hz;
    api_options.tiers_ns = cfg_.tier_thresholds_ns();
    api_options.window = cfg_.sampling.window;
    api_ = std::make_unique<dashboard::Api>(
        *query_pool_, std::move(api_options),
        std::vector<const dashboard::MetricsSource*>{health_.get(), alert_metrics_.get(), latency_metrics_.get()});
    router_ = std::make_unique<dashboard::Router>(read_token(cfg_.dashboard.token_file));
    api_->install(*router_);
    dashboard::install_assets(*router_);
    dashboard::ServerOptions options;
    options.listen = cfg_.dashboard.listen;
    options.threads = static_cast<int>(cfg_.dashboard.threads);
    options.queue = static_cast<int>(cfg_.dashboard.queue);
    options.request_timeout = duration_cast<milliseconds>(cfg_.dashboard.request_timeout);
    options.host_names = dashboard::host_names(cfg_.dashboard.listen, cfg_.alerts.external_url, host_);
    auto server = dashboard::Server::start(options, *router_);
    if (!server) throw std::runtime_error(server.error().message);
    server_ = std::move(*server);
    log::info("dashboard listening", {{"listen", cfg_.dashboard.listen}, {"port", server_->port()},
                                      {"token", cfg_.dashboard.token_file.empty() ? "none" : "required"}});
  }

  // Delivery first, so the engine can wake it; both reach the database on their own threads.
  void start_alerts() {
    auto receivers = alerts::resolve_receivers(cfg_.alerts.receivers);
    if (!receivers) throw std::runtime_error("alert receivers: " + receivers.error().message);
    alerts::DispatcherOptions delivery;
    delivery.host = host_;
    delivery.connect = database_;
    delivery.external_url = cfg_.alerts.external_url;
    delivery.receivers = std::move(*receivers);
    dispatcher_ = std::make_unique<alerts::Dispatcher>(std::move(delivery), std::make_shared<alerts::PocoHttpClient>());
    alerts::EngineOptions evaluation;
    evaluation.host = host_;
    evaluation.connect = database_;
    evaluation.alerts = cfg_.alerts;
    evaluation.profiled_targets = profiled_target_names();
    evaluation.retention = cfg_.storage.retention;
    evaluation.on_notifications = [this] { dispatcher_->wake(); };
    engine_ = std::make_unique<alerts::Engine>(std::move(evaluation), alerts::stored_sources);
  }

  std::vector<std::string> profiled_target_names() const {
    std::vector<std::string> names;
    for (const config::Target& t : cfg_.targets)
      if (t.profile) names.push_back(t.name);
    return names;
  }

  // The StatsD listener, while the running probe set counts StatsD metrics (bound once: statsd.listen
  // changes on restart only), fed that set's operations and counters.
  void apply_statsd() {
    const profile::ProbeFamily family = profile::ProbeFamily::statsd;
    if (!probes_->needs_statsd()) {
      statsd_.reset();
      host_states_.set(family, profile::ProbeStatus::off, "");
      return;
    }
    if (!statsd_) {
      auto listener = collector::StatsdListener::start(
          {cfg_.statsd.listen, cfg_.statsd.receive_buffer_bytes, cfg_.statsd.max_packet_bytes}, {});
      if (!listener) {
        log::error("the StatsD listener cannot start; StatsD timers and counters are not measured",
                   {{"listen", cfg_.statsd.listen}, {"error", listener.error().message}});
        host_states_.set(family, profile::ProbeStatus::failed, listener.error().message);
        return;
      }
      statsd_ = std::move(*listener);
    }
    statsd_->set_operations(probes_->statsd_timers());
    statsd_->set_counters(probes_->statsd_counters());
    host_states_.set(family, profile::ProbeStatus::running, "UDP " + cfg_.statsd.listen);
  }

  void apply_targets() {
    std::vector<bool> profiled;
    for (const config::Target& t : cfg_.targets) profiled.push_back(t.profile);
    registry_->set_targets(TargetMatcher(cfg_.targets), std::move(profiled));
  }

  static sigset_t handled_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
    return mask;
  }
  static void block_signals() {
    sigset_t mask = handled_signals();
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  }

  void setup_fds() {
    sigset_t mask = handled_signals();
    signal_fd_ = std::make_unique<Fd>(checked(signalfd(-1, &mask, SFD_CLOEXEC), "signalfd"));
    // Monotonic: a step of the wall clock must neither stop windows nor stretch one (window_clock.h).
    window_fd_ = std::make_unique<Fd>(checked(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd"));
    arm_window_timer();
    python_retry_fd_ = std::make_unique<Fd>(checked(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd"));

    std::uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
      watchdog_fd_ = std::make_unique<Fd>(checked(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), "timerfd"));
      itimerspec spec{};
      auto half = microseconds(watchdog_usec / 2);
      spec.it_interval.tv_sec = duration_cast<seconds>(half).count();
      spec.it_interval.tv_nsec = duration_cast<nanoseconds>(half % seconds(1)).count();
      spec.it_value = spec.it_interval;
      timerfd_settime(watchdog_fd_->get(), 0, &spec, nullptr);
    }

    epoll_fd_ = std::make_unique<Fd>(checked(epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
    for (int fd : {signal_fd_->get(), window_fd_->get(), process_events_fd(), python_stacks_fd(), python_retry_fd_->get(),
                   watchdog_fd_ ? watchdog_fd_->get() : -1}) {
      if (fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      checked(epoll_ctl(epoll_fd_->get(), EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
    }
  }

  int process_events_fd() const { return events_ ? events_->fd() : -1; }
  int python_stacks_fd() const { return sampler_ ? sampler_->python_stacks_fd() : -1; }

  // Windows end on wall-clock multiples of the window length, so hosts' windows line up.
  void arm_window_timer() {
    const auto wait = duration_cast<nanoseconds>(window_clock_->until_close(ClockReading::now()));
    itimerspec spec{};
    spec.it_value.tv_sec = duration_cast<seconds>(wait).count();
    spec.it_value.tv_nsec = (wait % seconds(1)).count();
    timerfd_settime(window_fd_->get(), 0, &spec, nullptr);
  }

  void loop() {
    epoll_event ready[8];
    while (running_) {
      // Any event may have watched a process whose interpreter is still to be found.
      arm_python_retry_timer();
      int n = epoll_wait(epoll_fd_->get(), ready, 8, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
      }
      for (int i = 0; i < n && running_; ++i) {
        int fd = ready[i].data.fd;
        if (fd == signal_fd_->get()) on_signal();
        else if (fd == process_events_fd()) drain_process_events();
        else if (fd == python_stacks_fd()) read_new_python_stacks();
        else if (fd == python_retry_fd_->get()) on_python_retry_timer();
        else if (fd == window_fd_->get()) on_window_timer();
        else if (watchdog_fd_ && fd == watchdog_fd_->get()) on_watchdog();
      }
    }
  }

  void drain_process_events() {
    if (!events_) return;
    events_->poll(0, [this](const collector::ProcEvent& e) {
      switch (e.type) {
        case collector::ProcEventType::exec: registry_->on_exec(e.pid); break;
        case collector::ProcEventType::fork: registry_->on_fork(e.pid, e.ppid, e.generation); break;
        case collector::ProcEventType::exit: registry_->on_exit(e.pid, e.generation); break;
      }
    });
  }

  void arm_python_retry_timer() {
    itimerspec spec{};  // all zero disarms
    if (auto next = python_ ? python_->next_retry() : std::nullopt) {
      auto at = std::max(next->time_since_epoch(), nanoseconds(1));  // 0 would disarm
      spec.it_value.tv_sec = duration_cast<seconds>(at).count();
      spec.it_value.tv_nsec = (at % seconds(1)).count();
    }
    timerfd_settime(python_retry_fd_->get(), TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void on_python_retry_timer() {
    read_timer(python_retry_fd_->get());
    if (python_) python_->retry(steady_clock::now());
  }

  void read_new_python_stacks() {
    if (!sampler_) return;
    sampler_->poll_python_stacks([this](const collector::NewPythonStack& s) { python_->on_new_stack(s); });
  }

  static std::uint64_t read_timer(int fd) {
    std::uint64_t expirations = 0;
    ssize_t n = ::read(fd, &expirations, sizeof expirations);
    return n == sizeof expirations ? expirations : 0;
  }

  void on_watchdog() {
    read_timer(watchdog_fd_->get());
    sd_notify(0, "WATCHDOG=1");
  }

  void on_window_timer() {
    read_timer(window_fd_->get());
    close_window();
    registry_->rescan();
    probes_->refresh();
    arm_window_timer();
  }

  void close_window() {
    // Events already queued belong to this window: apply them before draining.
    drain_process_events();
    read_new_python_stacks();
    auto drained = sampler_ ? sampler_->drain() : collector::DrainResult{};
    WindowInput input;
    input.host = host_;
    const WindowSpan span = window_clock_->close(ClockReading::now());
    input.start = span.start;
    input.end = span.end;
    for (const config::Target& t : cfg_.targets) input.target_names.push_back(t.name);
    input.stats = drained.stats;
    input.samples.reserve(drained.stacks.size());
    for (auto& s : drained.stacks)
      input.samples.push_back(
          {{s.tgid, s.generation}, std::move(s.user_ips), std::move(s.kernel_ips), std::move(s.python), s.count});

    SymbolizerResolver resolver(*symbolizer_, *python_symbolizer_);
    input.target_pids = registry_->window_pids(cfg_.targets.size());
    auto window = build_window(std::move(input), resolver,
                               [this](ProcessKey k) { return registry_->target_of(k); });
    collector::StatsdDrain statsd = statsd_ ? statsd_->drain() : collector::StatsdDrain{};
    probes_->add_latencies(window, statsd, *latency_metrics_);
    probes_->add_caches(window, statsd);
    window.probes = probe_states().list();
    health_->set_probes(window.probes);
    mark_deploys(window);
    // Processes that exited during the window stay attributable until their samples are built.
    registry_->end_window();
    symbolizer_->release_retired();
    python_symbolizer_->release_retired();
    health_->window_closed(window.stats, registry_->live_count(), registry_->stats(),
                           events_ ? events_->stats() : collector::ProcEventStats{}, symbolizer_->stats(),
                           python_symbolizer_->stats());
    log::debug("window closed", {{"stacks", window.profile.stacks.size()}, {"samples", window.stats.samples},
                                 {"lost_unresolved", window.stats.lost_unresolved},
                                 {"operations", window.operations.size()}, {"probe_calls", window.latency.probe_calls},
                                 {"statsd_timings", window.latency.statsd_timings}, {"caches", window.caches.size()}});
    log_python_window(drained.python);
    writer_->enqueue(std::move(window));
  }

  // The walker's health: losses are worth a warning, the rest is for debugging.
  void log_python_window(const collector::PythonSamplerStats& p) const {
    if (!python_ || (python_->python_processes() == 0 && p.samples == 0)) return;
    std::uint64_t lost = p.lost_read_error + p.lost_collision + p.lost_map_full + p.lost_unresolved;
    auto symbols = python_symbolizer_->stats();
    log::write(lost > 0 ? log::Level::warn : log::Level::debug,
               lost > 0 ? "python window closed; some python stacks were lost" : "python window closed",
               {{"python_samples", p.samples},
                {"truncated", p.truncated},
                {"no_thread_state", p.no_thread_state},
                {"lost_read_error", p.lost_read_error},
                {"lost_collision", p.lost_collision},
                {"lost_map_full", p.lost_map_full},
                {"lost_unresolved", p.lost_unresolved},
                {"announce_drops", p.event_drops},
                {"code_objects", symbols.code_objects},
                {"code_unreadable", symbols.unreadable},
                {"code_reused", symbols.reused}});
  }

  void mark_deploys(profile::WindowProfile& window) {
    const auto newest = registry_->newest_processes(cfg_.targets.size());
    const auto python = python_files(window);
    for (std::size_t i = 0; i < cfg_.targets.size(); ++i) {
      const TargetCode code = code_watcher_->code_of(i, newest[i], python[i]);
      if (auto marker = deploys_->observe(cfg_.targets[i].name, static_cast<std::uint32_t>(i), code, window.end))
        window.deploys.push_back(std::move(*marker));
    }
    if (auto saved = deploys_->save(); !saved)
      log::warn("cannot keep what targets run across restarts", {{"error", saved.error().message}});
  }

  void on_signal() {
    signalfd_siginfo info{};
    if (::read(signal_fd_->get(), &info, sizeof info) != sizeof info) return;
    if (info.ssi_signo == SIGHUP) {
      reload();
    } else {
      log::info("stopping", {{"signal", strsignal(static_cast<int>(info.ssi_signo))}});
      running_ = false;
    }
  }

  void reload() {
    auto now_us = duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", static_cast<long long>(now_us));
    auto next = config::load_file(config_path_);
    if (!next) {
      log::error("reload failed; keeping the running config", {{"config", config_path_}, {"errors", next.error().message}});
      sd_notify(0, "READY=1\nSTATUS=reload failed, running the previous config");
      return;
    }
    auto receivers = alerts::resolve_receivers(next->alerts.receivers);
    if (!receivers) {
      log::error("reload failed; keeping the running config", {{"config", config_path_}, {"errors", receivers.error().message}});
      sd_notify(0, "READY=1\nSTATUS=reload failed, running the previous config");
      return;
    }
    warn_restart_only_changes(*next);
    // The new probes first, beside the running ones, which they replace only when they measure at least
    // what the running ones do: working probes never go before their replacements exist.
    std::unique_ptr<ProbeSet> probes = ProbeSet::build(*next, watched_map_fd(), bpf_unavailable_, /*first=*/false);
    if (std::vector<profile::ProbeState> stopped = probes->would_stop(*probes_); !stopped.empty()) {
      keep_running_probes(stopped);
      return;
    }
    kept_at_reload_.clear();
    // Close the open window under the old targets, so its samples keep their old target names.
    close_window();
    cfg_.targets = next->targets;
    cfg_.tiers = next->tiers;
    cfg_.log_level = next->log_level;
    cfg_.alerts = next->alerts;
    cfg_.cache = next->cache;
    log::set_level(cfg_.log_level);
    probes_ = std::move(probes);
    apply_statsd();
    apply_targets();
    dispatcher_->set_receivers(std::move(*receivers), cfg_.alerts.external_url);
    engine_->reconfigure(cfg_.alerts, profiled_target_names());
    const std::string status = publish_probe_states();
    log::info("config reloaded", {{"targets", cfg_.targets.size()}, {"watched", registry_->live_count()}, {"probes", status}});
    sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
  }

  // A reload whose probes would stop families the running ones measure is not applied: the running
  // config and probes stay, and their states say why until a reload is applied.
  void keep_running_probes(const std::vector<profile::ProbeState>& stopped) {
    std::string errors;
    for (const profile::ProbeState& p : stopped) {
      errors += (errors.empty() ? "" : "; ") + std::string(profile::to_string(p.family)) + " " + p.text();
      kept_at_reload_[p.family] = "; kept by the last reload, whose new probes failed: " + p.detail;
    }
    log::error("reload failed; keeping the running config and its probes, which the new ones would stop",
               {{"config", config_path_}, {"errors", errors}});
    publish_probe_states();
    sd_notify(0, "READY=1\nSTATUS=reload failed, running the previous config");
  }

  void warn_restart_only_changes(const config::Config& next) const {
    auto warn_if = [](bool changed, const char* key) {
      if (changed) log::warn("this setting changes only on restart; keeping the running value", {{"key", key}});
    };
    warn_if(next.state_dir != cfg_.state_dir, "state_dir");
    warn_if(next.host != cfg_.host, "host");
    warn_if(next.storage.postgres != cfg_.storage.postgres, "storage.postgres");
    warn_if(next.storage.password_file != cfg_.storage.password_file, "storage.password_file");
    warn_if(next.storage.retention != cfg_.storage.retention, "storage.retention");
    warn_if(next.storage.spool_max_bytes != cfg_.storage.spool_max_bytes, "storage.spool_max");
    warn_if(next.sampling.frequency_hz != cfg_.sampling.frequency_hz, "sampling.frequency_hz");
    warn_if(next.sampling.window != cfg_.sampling.window, "sampling.window");
    warn_if(next.sampling.python_max_depth != cfg_.sampling.python_max_depth, "sampling.python_max_depth");
    warn_if(next.dashboard.listen != cfg_.dashboard.listen, "dashboard.listen");
    warn_if(next.statsd.listen != cfg_.statsd.listen, "statsd.listen");
    warn_if(next.statsd.receive_buffer_bytes != cfg_.statsd.receive_buffer_bytes, "statsd.receive_buffer");
    warn_if(next.statsd.max_packet_bytes != cfg_.statsd.max_packet_bytes, "statsd.max_packet");
    warn_if(next.dashboard.token_file != cfg_.dashboard.token_file, "dashboard.token_file");
    warn_if(next.dashboard.threads != cfg_.dashboard.threads, "dashboard.threads");
    warn_if(next.dashboard.queue != cfg_.dashboard.queue, "dashboard.queue");
    warn_if(next.dashboard.allow_unauthenticated != cfg_.dashboard.allow_unauthenticated,
            "dashboard.allow_unauthenticated");
    warn_if(next.dashboard.request_timeout != cfg_.dashboard.request_timeout, "dashboard.request_timeout");
    warn_if(next.dashboard.query_timeout != cfg_.dashboard.query_timeout, "dashboard.query_timeout");
  }

  void stop() {
    sd_notify(0, "STOPPING=1");
    // Requests in flight finish first; nothing reads the database after this.
    server_.reset();
    close_window();
    // Every window is written or spooled before exit; the spool is replayed at the next start.
    writer_->flush(seconds(20));
    health_->set_writer(nullptr);
    writer_.reset();
    alert_metrics_->detach();
    engine_.reset();
    dispatcher_.reset();
    statsd_.reset();
    probes_.reset();
    rollups_.reset();
    query_pool_.reset();
    events_.reset();
    sampler_.reset();
    if (embedded_) embedded_->stop();
    log::info("perfwatchd stopped");
  }

  config::Config cfg_;
  std::string config_path_;
  std::string host_;
  bool running_ = true;
  ProcFs proc_;
  std::unique_ptr<storage::EmbeddedPostgres> embedded_;
  std::unique_ptr<alerts::Dispatcher> dispatcher_;
  std::unique_ptr<alerts::Engine> engine_;
  std::unique_ptr<storage::WindowWriter> writer_;
  storage::ConnectOptions database_;
  std::unique_ptr<storage::RollupWorker> rollups_;
  std::unique_ptr<HealthMetrics> health_;
  std::unique_ptr<AlertMetrics> alert_metrics_;
  std::unique_ptr<LatencyMetrics> latency_metrics_;
  std::unique_ptr<dashboard::QueryPool> query_pool_;
  std::unique_ptr<dashboard::Api> api_;
  std::unique_ptr<dashboard::Router> router_;
  std::unique_ptr<dashboard::Server> server_;
  std::unique_ptr<collector::WatchedMap> watched_;
  std::unique_ptr<collector::OncpuSampler> sampler_;
  std::unique_ptr<collector::ProcEvents> events_;
  std::string bpf_unavailable_;  // why there is no BPF watched map, when there is none
  std::unique_ptr<collector::StatsdListener> statsd_;
  std::unique_ptr<ProbeSet> probes_;  // the running config's latency and cache probes
  // The families of the host (sampler, process events, StatsD); the probe set reports its own.
  profile::ProbeStates host_states_;
  // Why a family still runs the previous config's probes: a reload whose probes failed was not applied.
  std::map<profile::ProbeFamily, std::string> kept_at_reload_;
  std::unique_ptr<collector::Symbolizer> symbolizer_;
  collector::LiveProcessMemory process_memory_;
  collector::PythonDetector python_detector_;
  std::unique_ptr<collector::PythonSymbolizer> python_symbolizer_;
  std::unique_ptr<PythonTracker> python_;
  std::unique_ptr<SamplerSink> sink_;
  std::unique_ptr<ProcessRegistry> registry_;
  collector::CodeReader code_reader_;
  std::unique_ptr<CodeWatcher> code_watcher_;
  std::unique_ptr<DeployTracker> deploys_;
  std::unique_ptr<Fd> signal_fd_, window_fd_, watchdog_fd_, python_retry_fd_, epoll_fd_;
  std::optional<WindowClock> window_clock_;
};

}  // namespace

int run_daemon(const DaemonOptions& options) {
  auto cfg = config::load_file(options.config_path);
  if (!cfg) throw std::runtime_error(cfg.error().message);
  Daemon d(std::move(*cfg), options.config_path);
  return d.run();
}

}  // namespace perfwatch::daemon
