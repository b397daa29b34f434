//! deploy/: what can be checked without a Docker engine or a cluster. The manifests parse,
//! their probes and ports agree with the routes.toml they ship, both routes files are valid,
//! and the image builds with the commands CI runs.

use std::path::Path;
use std::process::Command;

fn deploy(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Every document of a YAML file, as JSON (PyYAML reads it; no YAML crate needed here).
fn yaml_documents(file: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .expect("python3 (pip install pyyaml)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn kubernetes_manifests_agree_with_their_routes_toml() {
    let docs = yaml_documents(&deploy("kubernetes/cheroot-wasm.yaml"));
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let routes_text = kind("ConfigMap")["data"]["routes.toml"].as_str().unwrap();
    let config = cheroot_wasm::Config::parse(Path::new("routes.toml"), routes_text)
        .unwrap_or_else(|e| panic!("the ConfigMap's routes.toml: {e}"));
    let admin_port = port_of(config.server.admin.as_deref().expect("an admin listener"));
    let http_port = match config.server.bind.as_slice() {
        [cheroot_wasm::BindAddr::Tcp(addr)] => port_of(addr),
        other => panic!("one TCP bind address, not {other:?}"),
    };

    let pod = &kind("Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let named = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(named("admin"), admin_port);
    assert_eq!(named("http"), http_port);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // The ConfigMap is mounted where the args look for it.
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(container["args"][0], format!("{mount}/routes.toml"));
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 30,
        "longer than the drain"
    );
    // The Service exposes the applications, never the admin port.
    let service_ports = kind("Service")["spec"]["ports"].as_array().unwrap().clone();
    assert!(service_ports.iter().all(|p| p["targetPort"] == "http"));
    assert_eq!(
        kind("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"],
        "cheroot-wasm"
    );
}

#[test]
fn the_image_builds_with_the_commands_ci_runs() {
    let config = cheroot_wasm::Config::load(&deploy("routes.toml")).unwrap();
    assert_eq!(config.routes.len(), 2);
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    for step in [
        "rustup target add wasm32-wasip2",
        "cargo build --release --locked -p cheroot-wasm",
        "cargo build --release --locked --manifest-path guest-examples/Cargo.toml --target wasm32-wasip2",
        "cheroot-wasm compile /app/routes.toml --cache-dir /app/cache",
        "USER 10001",
    ] {
        assert!(
            dockerfile.contains(step),
            "{step:?} missing from the Dockerfile"
        );
    }
    // The components the image copies are ones the guest workspace builds.
    for guest in [cheroot_wasm_tests::HELLO, cheroot_wasm_tests::ENVIRON] {
        let file = Path::new(guest).file_name().unwrap().to_str().unwrap();
        assert!(dockerfile.contains(&format!("release/{file}")), "{file}");
    }
}

#[test]
fn the_systemd_units_hand_their_sockets_to_serve() {
    let read = |name: &str| std::fs::read_to_string(deploy(&format!("systemd/{name}"))).unwrap();
    let socket = read("cheroot-wasm.socket");
    let service = read("cheroot-wasm.service");
    assert!(socket.contains("ListenStream=") && socket.contains("Accept=no"));
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.contains(" serve ") && exec.contains("--bind systemd"),
        "{exec}"
    );
    assert!(service.contains("ExecReload=/bin/kill -HUP $MAINPID"));
}
