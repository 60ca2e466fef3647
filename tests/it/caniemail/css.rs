//! Which caniemail CSS features a style sheet or a `style` attribute uses, read with cssparser: selectors
//! (class, type, descendant, child, attribute, pseudo-classes and -elements...), at-rules (`@media` and its
//! features), properties and notable values (units, functions such as `rgb()` or `calc()`, `display: none`,
//! `!important`).
//!
//! What sits inside a media query (an `@media` block, or a `<style media="...">`) is progressive enhancement: the
//! query itself is recorded, the rules inside it are not.

use cssparser::{
    AtRuleParser, CowRcStr, DeclarationParser, ParseError, Parser, ParserState, QualifiedRuleParser,
    RuleBodyItemParser, RuleBodyParser, StyleSheetParser, Token,
};

use super::Uses;

/// A property's feature slug(s) in the caniemail data (some may not exist there; the gate reports those).
fn property_slug(name: &str) -> Option<String> {
    let side = |prefix: &str| {
        ["top", "right", "bottom", "left"].iter().any(|side| name == format!("{prefix}-{side}")) || name == prefix
    };
    let slug = match name {
        _ if name.starts_with("--") => "css-variables".to_owned(),
        // Vendor and Outlook (`mso-`) properties are outside caniemail's data; clients ignore what they do not know.
        _ if name.starts_with('-') || name.starts_with("mso-") => return None,
        _ if side("margin") => "css-margin".to_owned(),
        _ if side("padding") => "css-padding".to_owned(),
        "margin-inline" | "margin-block" => "css-margin-inline-block".to_owned(),
        "margin-inline-start" | "margin-inline-end" => "css-margin-inline-start-end".to_owned(),
        "margin-block-start" | "margin-block-end" => "css-margin-block-start-end".to_owned(),
        "padding-inline" | "padding-block" => "css-padding-inline-block".to_owned(),
        "padding-inline-start" | "padding-inline-end" => "css-padding-inline-start-end".to_owned(),
        "padding-block-start" | "padding-block-end" => "css-padding-block-start-end".to_owned(),
        "border-start-start-radius"
        | "border-start-end-radius"
        | "border-end-start-radius"
        | "border-end-end-radius" => "css-border-radius-logical".to_owned(),
        _ if name.starts_with("border") && name.ends_with("radius") => "css-border-radius".to_owned(),
        "border-collapse" | "border-spacing" => format!("css-{name}"),
        _ if name.starts_with("border-image") => "css-border-image".to_owned(),
        "border-inline" | "border-block" => "css-border-inline-block".to_owned(),
        _ if name.starts_with("border-inline") || name.starts_with("border-block") => {
            "css-border-inline-block-longhand".to_owned()
        }
        _ if name == "border" || name.starts_with("border-") => "css-border".to_owned(),
        "top" | "right" | "bottom" | "left" => "css-left-right-top-bottom".to_owned(),
        _ => format!("css-{name}"),
    };
    Some(slug)
}

/// Records what one CSS text uses into `uses`.
pub(super) struct Css<'u> {
    uses: &'u mut Uses,
    /// Inside a media query: rules are not recorded.
    in_media: bool,
}

impl<'u> Css<'u> {
    pub fn new(uses: &'u mut Uses, in_media: bool) -> Self {
        Self { uses, in_media }
    }

    fn record(&mut self, slug: impl Into<String>, seen: impl Into<String>) {
        if !self.in_media {
            self.uses.record(slug.into(), seen.into());
        }
    }

    /// A style sheet (a `<style>` element's text).
    pub fn sheet(&mut self, text: &str) {
        let mut parser = Parser::new(text);
        for rule in StyleSheetParser::new(&mut parser, self) {
            if let Err((_, slice, _)) = rule {
                panic!("the email holds CSS that does not parse: {slice}");
            }
        }
    }

    /// A declaration list (a `style` attribute, or a rule's body).
    pub fn declarations(&mut self, text: &str) {
        let mut parser = Parser::new(text);
        self.body(&mut parser);
    }

    fn body<'i>(&mut self, parser: &mut Parser<'i>) {
        for declaration in RuleBodyParser::new(parser, self) {
            if let Err((_, slice, _)) = declaration {
                panic!("the email holds a CSS declaration that does not parse: {slice}");
            }
        }
    }

    /// The tokens of a value, functions included, down to nested blocks.
    fn value<'i>(&mut self, property: &str, input: &mut Parser<'i>) {
        let mut bang = false;
        while let Ok(token) = input.next() {
            let token = token.clone();
            let seen = format!("{property}: {}", token_text(&token));
            match &token {
                Token::Dimension { unit, .. } => self.record(format!("css-unit-{}", unit.to_ascii_lowercase()), seen),
                Token::Percentage { .. } => self.record("css-unit-percent", seen),
                Token::Delim('!') => bang = true,
                Token::Ident(word) if bang && word.eq_ignore_ascii_case("important") => {
                    self.record("css-important", seen)
                }
                Token::Ident(word) if word.eq_ignore_ascii_case("initial") => self.record("css-unit-initial", seen),
                Token::Ident(word) if property == "display" => {
                    let word = word.to_ascii_lowercase();
                    let shown = if word == "inline-flex" { "flex" } else { word.as_str() };
                    self.record(format!("css-display-{shown}"), seen);
                }
                Token::Function(name) => {
                    let name = name.to_ascii_lowercase();
                    let slug = match name.as_str() {
                        "rgb" | "rgba" => format!("css-{name}"),
                        "calc" => "css-unit-calc".to_owned(),
                        "min" | "max" | "clamp" | "light-dark" => format!("css-function-{name}"),
                        "var" => "css-variables".to_owned(),
                        _ => format!("css-{name}"),
                    };
                    self.record(slug, seen);
                    let _ = input.parse_nested_block(|nested| {
                        self.value(property, nested);
                        Ok::<(), ParseError<()>>(())
                    });
                }
                _ => {}
            }
            if !matches!(token, Token::Delim('!') | Token::WhiteSpace(_)) {
                bang = false;
            }
        }
    }

    /// A selector list's features.
    fn selectors<'i>(&mut self, input: &mut Parser<'i>) {
        let start = input.position();
        // Simple selectors in the current compound, and whether whitespace followed the last one.
        let (mut simple, mut space) = (0usize, false);
        let mut found = Vec::new();
        while let Ok(token) = input.next_including_whitespace() {
            let token = token.clone();
            let kind = match &token {
                Token::WhiteSpace(_) => {
                    space = true;
                    continue;
                }
                Token::Comma => Some("css-selector-grouping"),
                Token::Delim('>') => Some("css-selector-child"),
                Token::Delim('+') => Some("css-selector-adjacent-sibling"),
                Token::Delim('~') => Some("css-selector-general-sibling"),
                _ => None,
            };
            if let Some(kind) = kind {
                found.push(kind.to_owned());
                (simple, space) = (0, false);
                continue;
            }
            if space && simple > 0 {
                found.push("css-selector-descendant".to_owned());
                simple = 0;
            }
            space = false;
            simple += 1;
            if simple == 2 {
                found.push("css-selector-chaining".to_owned());
            }
            match &token {
                Token::Ident(_) => found.push("css-selector-type".to_owned()),
                Token::Delim('.') => {
                    found.push("css-selector-class".to_owned());
                    let _ = input.next_including_whitespace();
                }
                Token::IDHash(_) | Token::Hash(_) => found.push("css-selector-id".to_owned()),
                Token::Delim('*') => found.push("css-selector-universal".to_owned()),
                Token::SquareBracketBlock => found.push("css-selector-attribute".to_owned()),
                Token::Colon => match input.next_including_whitespace().cloned() {
                    Ok(Token::Colon) => {
                        if let Ok(Token::Ident(name) | Token::Function(name)) =
                            input.next_including_whitespace().cloned()
                        {
                            found.push(format!("css-pseudo-element-{}", name.to_ascii_lowercase()));
                        }
                    }
                    Ok(Token::Ident(name) | Token::Function(name)) => {
                        found.push(format!("css-pseudo-class-{}", name.to_ascii_lowercase()));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let text = input.slice_from(start).trim().to_owned();
        for slug in found {
            self.record(slug, text.clone());
        }
    }
}

fn token_text(token: &Token<'_>) -> String {
    use cssparser::ToCss;
    token.to_css_string()
}

/// What an at-rule is, between its prelude and its block.
pub(super) enum At {
    Media,
    FontFace,
    Other,
}

impl<'i> QualifiedRuleParser<'i> for Css<'_> {
    type Prelude = ();
    type QualifiedRule = ();
    type Error = ();

    fn parse_prelude(&mut self, input: &mut Parser<'i>) -> Result<(), ParseError<()>> {
        self.selectors(input);
        Ok(())
    }

    fn parse_block(&mut self, _: (), _: &ParserState, input: &mut Parser<'i>) -> Result<(), ParseError<()>> {
        self.body(input);
        Ok(())
    }
}

impl<'i> AtRuleParser<'i> for Css<'_> {
    type Prelude = At;
    type AtRule = ();
    type Error = ();

    fn parse_prelude(&mut self, name: CowRcStr<'i>, input: &mut Parser<'i>) -> Result<At, ParseError<()>> {
        let name = name.to_ascii_lowercase();
        let start = input.position();
        let mut features = Vec::new();
        while let Ok(token) = input.next() {
            if let Token::ParenthesisBlock = token {
                let _ = input.parse_nested_block(|nested| {
                    if let Ok(Token::Ident(feature)) = nested.next() {
                        features.push(feature.to_ascii_lowercase());
                    }
                    while nested.next().is_ok() {}
                    Ok::<(), ParseError<()>>(())
                });
            }
        }
        let seen = format!("@{name} {}", input.slice_from(start).trim());
        let slug = match name.as_str() {
            "font-face" => "css-at-font-face".to_owned(),
            other => format!("css-at-{other}"),
        };
        self.record(slug, seen.clone());
        for feature in features {
            let feature = feature.trim_start_matches("min-").trim_start_matches("max-").to_owned();
            let feature = match feature.as_str() {
                "-webkit-device-pixel-ratio" | "resolution" => "device-pixel-ratio".to_owned(),
                _ => feature,
            };
            // Width queries are @media's own business; the data lists the other media features one by one.
            if !matches!(feature.as_str(), "width" | "height" | "device-width" | "device-height") {
                self.record(format!("css-at-media-{feature}"), seen.clone());
            }
        }
        Ok(match name.as_str() {
            "media" => At::Media,
            "font-face" => At::FontFace,
            _ => At::Other,
        })
    }

    fn rule_without_block(&mut self, _: At, _: &ParserState) -> Result<(), ()> {
        Ok(())
    }

    fn parse_block(&mut self, at: At, _: &ParserState, input: &mut Parser<'i>) -> Result<(), ParseError<()>> {
        match at {
            At::Media => {
                let outer = std::mem::replace(&mut self.in_media, true);
                for rule in StyleSheetParser::new(input, self) {
                    if let Err((_, slice, _)) = rule {
                        panic!("the email holds CSS that does not parse: {slice}");
                    }
                }
                self.in_media = outer;
            }
            At::FontFace => self.body(input),
            At::Other => while input.next().is_ok() {},
        }
        Ok(())
    }
}

impl<'i> DeclarationParser<'i> for Css<'_> {
    type Declaration = ();
    type Error = ();

    fn parse_value(
        &mut self,
        name: CowRcStr<'i>,
        input: &mut Parser<'i>,
        _: &ParserState,
    ) -> Result<(), ParseError<()>> {
        let name = name.to_ascii_lowercase();
        let start = input.position();
        self.value(&name, input);
        let seen = format!("{name}: {}", input.slice_from(start).trim());
        if let Some(slug) = property_slug(&name) {
            self.record(slug, seen);
        }
        Ok(())
    }
}

impl<'i> RuleBodyItemParser<'i, (), ()> for Css<'_> {
    fn parse_declarations(&self) -> bool {
        true
    }

    fn parse_qualified(&self) -> bool {
        false
    }
}
