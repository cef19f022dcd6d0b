//! The compose files checked by reading them (fast, no Docker needed): the services, ports,
//! health checks and environment they declare must match what the app reads
//! (`Settings::from_vars`, the same loader as the environment) and the routes it serves.
//! `make compose-test` (scripts/compose-test.sh) runs them for real.

use std::collections::BTreeMap;

use chat_api::Settings;
use serde_yaml_ng::Value;

fn load(file: &str) -> Value {
    let path = format!("{}/../../{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    value.apply_merge().unwrap();
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

/// A service's environment, with `${VAR:?...}` secrets replaced by a placeholder.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let Value::Mapping(env) = &service["environment"] else {
        panic!("no environment")
    };
    env.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
            };
            let mut resolved = value.clone();
            while let Some(start) = resolved.find("${") {
                let end = resolved[start..].find('}').unwrap() + start;
                resolved.replace_range(start..=end, "secret");
            }
            (k.as_str().unwrap().to_owned(), resolved)
        })
        .collect()
}

fn settings_of(env: &BTreeMap<String, String>) -> Settings {
    Settings::from_vars(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn port(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

/// `s` with every `${NAME:-default}` replaced by its default (what compose uses when NAME is
/// unset).
fn with_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed ${") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn published(service: &Value) -> Vec<(u16, u16)> {
    service["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            let spec = with_defaults(p.as_str().unwrap());
            let parts: Vec<&str> = spec.rsplit(':').take(2).collect();
            (parts[1].parse().unwrap(), parts[0].parse().unwrap())
        })
        .collect()
}

fn healthcheck(service: &Value) -> String {
    let test = &service["healthcheck"]["test"];
    test.as_sequence()
        .unwrap_or_else(|| panic!("no healthcheck"))
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `postgres://user[:pass]@host:port/db` → (host, port, db).
fn database_parts(url: &str) -> (String, u16, String) {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let (hostport, db) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    (host.into(), port.parse().unwrap(), db.into())
}

#[test]
fn the_dev_file_runs_the_app_against_its_own_databases_on_8080_and_9000_on_loopback() {
    let compose = load("docker-compose.dev.yml");
    let app = service(&compose, "app");
    let settings = settings_of(&environment(app));
    let ports = published(app);
    assert!(ports.contains(&(8080, port(&settings.listen))), "{ports:?}");
    assert!(settings.door_avito, "door 001 is on for development");
    assert!(
        ports.contains(&(9000, port(settings.avito_listen_addr()))),
        "{ports:?}"
    );
    let raw_ports = with_defaults(&format!("{:?}", app["ports"]));
    assert!(
        !raw_ports.contains("\"9000:") && raw_ports.contains("127.0.0.1:9000:9000"),
        "door 001 only on the host's loopback: {raw_ports}"
    );
    let (host, db_port, db) = database_parts(&settings.database_url);
    assert_eq!((host.as_str(), db_port), ("postgres", 5432));
    assert_eq!(
        service(&compose, "postgres")["environment"]["POSTGRES_DB"].as_str(),
        Some(db.as_str())
    );
    assert!(settings.redis_url.starts_with("redis://redis:6379"));
    assert!(
        app["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(".:/src")),
        "source mounted"
    );
    for name in ["postgres", "redis"] {
        assert!(!healthcheck(service(&compose, name)).is_empty());
    }
    // The databases are published where `make run` and the tests look for them.
    assert!(published(service(&compose, "postgres")).contains(&(5432, 5432)));
    assert!(published(service(&compose, "redis")).contains(&(6379, 6379)));
}

#[test]
fn the_prod_file_runs_two_instances_behind_nginx_with_secrets_from_the_environment() {
    let compose = load("docker-compose.prod.yml");
    let nginx_conf = std::fs::read_to_string(format!(
        "{}/../../docker/nginx.conf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for name in ["app1", "app2"] {
        let app = service(&compose, name);
        let env = environment(app);
        let settings = settings_of(&env);
        assert!(settings.jwt_secret.is_some(), "{name}: a real JWT secret");
        assert!(
            settings.trust_proxy,
            "{name}: behind nginx, client addresses come from it"
        );
        let raw = &app["environment"];
        assert!(
            raw["CHAT_JWT_SECRET"]
                .as_str()
                .unwrap()
                .starts_with("${CHAT_JWT_SECRET:?"),
            "secret from the environment"
        );
        assert!(
            raw["DATABASE_URL"]
                .as_str()
                .unwrap()
                .contains("${POSTGRES_PASSWORD:?")
        );
        assert!(healthcheck(app).contains("/readyz"));
        assert_eq!(app["restart"].as_str(), Some("unless-stopped"));
        let (host, _, db) = database_parts(&settings.database_url);
        assert_eq!(host, "postgres");
        assert_eq!(
            service(&compose, "postgres")["environment"]["POSTGRES_DB"].as_str(),
            Some(db.as_str())
        );
        assert!(
            !settings.door_avito,
            "{name}: door 001 (no auth) stays off in production"
        );
        let upstream = format!("server {name}:{};", port(&settings.listen));
        assert!(
            nginx_conf.contains(&upstream),
            "nginx.conf lacks {upstream}"
        );
        assert!(
            !nginx_conf.contains(&format!(
                "server {name}:{};",
                port(settings.avito_listen_addr())
            )),
            "nginx forwards to door 001"
        );
        assert_eq!(
            app["depends_on"]["migrate"]["condition"].as_str(),
            Some("service_completed_successfully")
        );
    }
    let migrate = service(&compose, "migrate");
    assert_eq!(migrate["command"][0].as_str(), Some("migrate"));
    let nginx = service(&compose, "nginx");
    let ports = published(nginx);
    assert_eq!(ports, vec![(80, 80)], "only the main listener is published");
    assert!(nginx_conf.contains("listen 80;") && !nginx_conf.contains("listen 9000;"));
    // The app trusts the proxy's forwarded headers: nginx sets each, a client's never pass.
    for header in [
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Host $http_host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header Forwarded \"\";",
    ] {
        assert!(nginx_conf.contains(header), "nginx.conf lacks {header}");
    }
    assert!(
        nginx_conf.contains("proxy_set_header Upgrade $http_upgrade;"),
        "WebSocket upgrade"
    );
    assert!(healthcheck(nginx).contains("/healthz"));
    let postgres = service(&compose, "postgres");
    assert!(
        postgres["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|v| v.as_str().unwrap().starts_with("pgdata:"))
    );
    assert!(compose["volumes"].get("pgdata").is_some());
    for name in ["postgres", "redis"] {
        assert!(!healthcheck(service(&compose, name)).is_empty());
        assert_eq!(
            service(&compose, name)["restart"].as_str(),
            Some("unless-stopped")
        );
    }
}
