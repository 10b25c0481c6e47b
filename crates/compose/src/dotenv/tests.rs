use super::*;

fn shell(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/u".into()),
        "SHADOWED" => Some("from shell".into()),
        _ => None,
    }
}

fn pairs(text: &str) -> Vec<(String, String)> {
    parse(text, &shell).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn one(text: &str) -> String {
    let got = pairs(text);
    assert_eq!(got.len(), 1, "{text:?} gave {got:?}");
    got[0].1.clone()
}

#[test]
fn parses_single_values_like_compose_go() {
    let cases: &[(&str, &str)] = &[
        ("A=b", "b"),
        ("A=", ""),
        ("A= spaced out  ", "spaced out"),
        ("A : yaml style", "yaml style"),
        ("A: b", "b"),
        ("export A=b", "b"),
        ("export   A=b", "b"),
        ("A=b # comment", "b"),
        ("A=b#not-a-comment", "b#not-a-comment"),
        ("A='single $HOME \\n'", "single $HOME \\n"),
        ("A=\"double $HOME\"", "double /home/u"),
        ("A=\"line\\nbreak\"", "line\nbreak"),
        ("A=\"say \\\"hi\\\"\"", "say \"hi\""),
        ("A=\"x\" # comment after quotes", "x"),
        ("A=\"# not a comment\"", "# not a comment"),
        ("A=$HOME/bin", "/home/u/bin"),
        ("A=${MISSING:-fallback}", "fallback"),
        ("A=a=b=c", "a=b=c"),
        ("A=\"multi\nline\"", "multi\nline"),
        ("A='multi\nline'", "multi\nline"),
        ("A.B-C[0]=dotted", "dotted"),
        ("A=$$literal", "$literal"),
        ("A='it\\'s'", "it's"),
        ("A=\"tab\\there\\\\back\"", "tab\there\\back"),
        ("A=\"\\$HOME costs \\$5\"", "$HOME costs $5"),
        ("A=\"\\0101\\q\"", "A\\q"),
        ("A=\"bell\\a\\v\"", "bell\u{7}\u{b}"),
    ];
    for (text, want) in cases {
        assert_eq!(one(text), *want, "text {text:?}");
    }
}

#[test]
fn keeps_file_order_and_interpolates_earlier_variables() {
    let text = "\
# a comment

FIRST=one
export SECOND=\"${FIRST}-two\"
  # indented comment
THIRD=$SECOND/three
FIRST=again\r
SHADOWED=file
USE=$SHADOWED
";
    let want = [
        ("FIRST", "again"),
        ("SECOND", "one-two"),
        ("THIRD", "one-two/three"),
        ("SHADOWED", "file"),
        ("USE", "from shell"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs(text), want);
}

#[test]
fn export_is_a_prefix_only_with_space_after_it() {
    assert_eq!(
        pairs("exportA=1"),
        vec![("exportA".to_string(), "1".to_string())]
    );
    assert_eq!(
        pairs("export\tA=1"),
        vec![("A".to_string(), "1".to_string())]
    );
}

#[test]
fn bare_keys_inherit_from_the_lookup() {
    assert_eq!(
        pairs("HOME\nNOT_SET\nB=1\nSHADOWED"),
        vec![
            ("HOME".to_string(), "/home/u".to_string()),
            ("B".to_string(), "1".to_string()),
            ("SHADOWED".to_string(), "from shell".to_string()),
        ]
    );
}

#[test]
fn multi_line_values_keep_line_numbers_right() {
    let err = parse("A=\"one\ntwo\"\nB=ok\nC!=x\n", &shell).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"line 4: unexpected character "!" in variable name "C!=x""#
    );
}

#[test]
fn reports_bad_lines() {
    let cases: &[(&str, &str)] = &[
        (
            "A=1\nB\"=2",
            r#"line 2: unexpected character "\"" in variable name "B\"=2""#,
        ),
        ("=value", "line 1: zero length string"),
        ("A=1\nMY KEY=2", "line 2: key cannot contain a space"),
        ("\n\nA=\"open", "line 3: unterminated quoted value \"open"),
        ("A='open\nB=1", "line 1: unterminated quoted value 'open"),
        ("A=${", r#"line 1: Invalid template: "${""#),
        (
            "A=\"${NEED:?set NEED}\"",
            "line 1: required variable NEED is missing a value: set NEED",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text, &shell).unwrap_err();
        assert_eq!(err.to_string(), *want, "text {text:?}");
        assert_eq!(err.kind(), coracle_core::ErrorKind::InvalidArgument);
    }
}
