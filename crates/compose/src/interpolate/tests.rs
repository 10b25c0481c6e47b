use serde_json::json;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "FOO" => Some("first".into()),
        "BAR" => Some(String::new()),
        "B" => Some("bee".into()),
        "NUM" => Some("8080".into()),
        "lower_case" => Some("lc".into()),
        "UNI" => Some("é€".into()),
        _ => None,
    }
}

fn sub(template: &str) -> Result<String, String> {
    substitute(template, &env).map_err(|e| e.to_string())
}

#[test]
fn substitutes_like_compose_go() {
    let cases: &[(&str, &str)] = &[
        ("plain text", "plain text"),
        ("", ""),
        ("$FOO", "first"),
        ("${FOO}", "first"),
        ("x${FOO}y", "xfirsty"),
        ("$FOO-bar", "first-bar"),
        ("$FOO.bar", "first.bar"),
        ("$FOOBAR", ""),
        ("${UNSET}", ""),
        ("$UNSET", ""),
        ("${lower_case}", "lc"),
        ("$$FOO", "$FOO"),
        ("$${FOO}", "${FOO}"),
        ("a$$b", "a$b"),
        ("cost: 5$", "cost: 5$"),
        ("$1 and $ ", "$1 and $ "),
        ("${FOO:-default}", "first"),
        ("${BAR:-default}", "default"),
        ("${UNSET:-default}", "default"),
        ("${FOO-default}", "first"),
        ("${BAR-default}", ""),
        ("${UNSET-default}", "default"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a b:c}", "a b:c"),
        ("${UNSET:-${B}}", "bee"),
        ("${UNSET:-${OTHER:-x}}", "x"),
        ("${UNSET:-pre-${NUM}-post}", "pre-8080-post"),
        ("${FOO:-${NOPE:?unused}}", "first"),
        ("${FOO:?err}", "first"),
        ("${BAR?err}", ""),
        ("${FOO:+alt}", "alt"),
        ("${BAR:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${FOO+alt}", "alt"),
        ("${BAR+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${FOO:+${B}-${NUM}}", "bee-8080"),
        ("${UNSET:-{json}}", "{json}"),
        ("${UNI}/$UNI", "é€/é€"),
        ("ü${FOO}ü", "üfirstü"),
        ("host:${NUM:-80}:80", "host:8080:80"),
        ("${UNSET-err?msg}", "err?msg"),
        ("${UNSET:-${BAR-d}}", ""),
        ("${FOO:+${FOO},}x", "first,x"),
        ("${UNSET:+${UNSET},}x", "x"),
    ];
    for (template, want) in cases {
        assert_eq!(sub(template).as_deref(), Ok(*want), "template {template:?}");
    }
}

#[test]
fn reports_errors_like_compose_go() {
    let cases: &[(&str, &str)] = &[
        ("${", r#"Invalid template: "${""#),
        ("${FOO", r#"Invalid template: "${FOO""#),
        ("a ${ FOO}", r#"Invalid template: "a ${ FOO}""#),
        ("${}", r#"Invalid template: "${}""#),
        ("${ }", r#"Invalid template: "${ }""#),
        ("${FOO!}", r#"Invalid template: "${FOO!}""#),
        ("${FOO }", r#"Invalid template: "${FOO }""#),
        ("${FOO:}", r#"Invalid template: "${FOO:}""#),
        ("${FOO:x}", r#"Invalid template: "${FOO:x}""#),
        ("${FOO=x}", r#"Invalid template: "${FOO=x}""#),
        ("${9FOO}", r#"Invalid template: "${9FOO}""#),
        ("${FOO:-${B}", r#"Invalid template: "${FOO:-${B}""#),
        ("${UNSET:-${}}", r#"Invalid template: "${}""#),
        ("${UNSET:?}", "required variable UNSET is missing a value"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        (
            "${UNSET:?please set it}",
            "required variable UNSET is missing a value: please set it",
        ),
        (
            "${BAR:?must not be empty}",
            "required variable BAR is missing a value: must not be empty",
        ),
        (
            "${UNSET?need ${B}}",
            "required variable UNSET is missing a value: need bee",
        ),
        (
            "${UNSET:-${INNER:?inner}}",
            "required variable INNER is missing a value: inner",
        ),
    ];
    for (template, want) in cases {
        assert_eq!(
            sub(template),
            Err(want.to_string()),
            "template {template:?}"
        );
    }
}

#[test]
fn interpolates_strings_in_the_tree_not_keys() {
    let tree = json!({
        "services": {
            "$FOO": {
                "image": "nginx:${TAG:-latest}",
                "ports": ["${NUM}:80", 443],
                "environment": {"A": "$B", "N": null, "T": true},
                "scale": 2
            }
        }
    });
    let got = interpolate(&tree, &env).unwrap();
    assert_eq!(
        got,
        json!({
            "services": {
                "$FOO": {
                    "image": "nginx:latest",
                    "ports": ["8080:80", 443],
                    "environment": {"A": "bee", "N": null, "T": true},
                    "scale": 2
                }
            }
        })
    );
}

#[test]
fn tree_errors_name_the_path() {
    let tree = json!({"services": {"web": {"image": "${IMAGE:?no image}"}}});
    let err = interpolate(&tree, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error while interpolating services.web.image: \
         required variable IMAGE is missing a value: no image"
    );
    assert_eq!(err.kind(), coracle_core::ErrorKind::InvalidArgument);

    let tree = json!({"services": {"web": {"command": ["ok", "${"]}}});
    let err = interpolate(&tree, &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"error while interpolating services.web.command.[]: Invalid template: "${""#
    );
}
