use super::*;

#[test]
fn modes() {
    assert_eq!(mode(""), Mode::Network("bridge".into()));
    assert_eq!(mode("default"), Mode::Network("bridge".into()));
    assert_eq!(mode("none"), Mode::None);
    assert_eq!(mode("container:web"), Mode::Container("web".into()));
    assert_eq!(mode("mynet"), Mode::Network("mynet".into()));
}

#[test]
fn publish_specs_become_port_bindings_and_back() {
    let map = publish_to_port_bindings(&[
        "127.0.0.1:18080:80".into(),
        "9000-9001:90-91/udp".into(),
        "53".into(),
    ])
    .unwrap();
    assert_eq!(map["80/tcp"][0]["HostIp"], "127.0.0.1");
    assert_eq!(map["91/udp"][0]["HostPort"], "9001");
    assert_eq!(map["53/tcp"][0]["HostPort"], "");
    let host = HostConfig {
        port_bindings: map,
        ..Default::default()
    };
    let config = ContainerConfig {
        exposed_ports: Some([("443/tcp".to_string(), serde_json::json!({}))].into()),
        ..Default::default()
    };
    assert_eq!(port_bindings(&host, &config).unwrap().len(), 4);
    let host = HostConfig {
        publish_all_ports: true,
        ..host
    };
    let all = port_bindings(&host, &config).unwrap();
    assert_eq!(all.len(), 5);
    assert!(all
        .iter()
        .any(|b| b.container_port == 443 && b.host_port == 0));
}

#[test]
fn add_host_forms() {
    let host = HostConfig {
        extra_hosts: vec!["db:10.0.0.9".into(), "gw:host-gateway".into()],
        ..Default::default()
    };
    let got = parse_extra_hosts(&host, Some(Ipv4Addr::new(172, 17, 0, 1))).unwrap();
    assert_eq!(got[1], ("gw".to_string(), "172.17.0.1".to_string()));
    assert!(parse_extra_hosts(&host, None).is_err());
}
