//! The subset of OData `$filter`, `$search` and `$orderby` the fake understands, evaluated
//! against [`GraphEntity`] properties. Anything else is refused, as Graph refuses what it cannot do.

use std::cmp::Ordering;

use serde_json::Value;

use super::entities::GraphEntity;

#[derive(Debug, PartialEq)]
pub enum Filter {
    Or(Vec<Filter>),
    And(Vec<Filter>),
    Not(Box<Filter>),
    Compare { property: String, equal: bool, literal: Value },
    StartsWith { property: String, prefix: String },
    EndsWith { property: String, suffix: String },
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, position: 0 };
        let filter = parser.or_expression()?;
        match parser.tokens.get(parser.position) {
            None => Ok(filter),
            Some(token) => Err(format!("unexpected {token:?}")),
        }
    }

    /// Graph evaluates `ne`, `not`, `endsWith` and `eq null` only as advanced queries.
    pub fn is_advanced(&self) -> bool {
        match self {
            Filter::Or(parts) | Filter::And(parts) => parts.iter().any(Filter::is_advanced),
            Filter::Not(_) | Filter::EndsWith { .. } => true,
            Filter::Compare { equal, literal, .. } => !equal || literal.is_null(),
            Filter::StartsWith { .. } => false,
        }
    }

    pub fn properties(&self) -> Vec<&str> {
        match self {
            Filter::Or(parts) | Filter::And(parts) => parts.iter().flat_map(Filter::properties).collect(),
            Filter::Not(inner) => inner.properties(),
            Filter::Compare { property, .. }
            | Filter::StartsWith { property, .. }
            | Filter::EndsWith { property, .. } => vec![property.as_str()],
        }
    }

    pub fn matches(&self, entity: &dyn GraphEntity) -> bool {
        let text = |property: &str| match lookup(entity, property) {
            Value::String(text) => Some(text.to_lowercase()),
            _ => None,
        };
        match self {
            Filter::Or(parts) => parts.iter().any(|part| part.matches(entity)),
            Filter::And(parts) => parts.iter().all(|part| part.matches(entity)),
            Filter::Not(inner) => !inner.matches(entity),
            Filter::Compare { property, equal, literal } => values_equal(&lookup(entity, property), literal) == *equal,
            Filter::StartsWith { property, prefix } => {
                text(property).is_some_and(|value| value.starts_with(&prefix.to_lowercase()))
            }
            Filter::EndsWith { property, suffix } => {
                text(property).is_some_and(|value| value.ends_with(&suffix.to_lowercase()))
            }
        }
    }
}

fn lookup(entity: &dyn GraphEntity, property: &str) -> Value {
    super::entities::canonical_name(entity.entity_type().properties, property)
        .and_then(|name| entity.property(name))
        .unwrap_or(Value::Null)
}

/// String comparison is case-insensitive in directory queries.
fn values_equal(actual: &Value, literal: &Value) -> bool {
    match (actual, literal) {
        (Value::String(actual), Value::String(literal)) => actual.eq_ignore_ascii_case(literal),
        _ => actual == literal,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            literal.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => literal.push(other),
                        None => return Err("unterminated string literal".into()),
                    }
                }
                tokens.push(Token::Text(literal));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | '@' | '#') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if word.is_empty() {
                    return Err(format!("unexpected character '{c}'"));
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.position), Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword))
    }

    fn expect(&mut self, expected: Token) -> Result<(), String> {
        match self.next() {
            Some(token) if token == expected => Ok(()),
            other => Err(format!("expected {expected:?}, found {other:?}")),
        }
    }

    fn or_expression(&mut self) -> Result<Filter, String> {
        self.joined("or", Self::and_expression, Filter::Or)
    }

    fn and_expression(&mut self) -> Result<Filter, String> {
        self.joined("and", Self::unary, Filter::And)
    }

    /// `operand (keyword operand)*`: a lone operand as itself, several joined by `join`.
    fn joined(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Filter, String>,
        join: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, String> {
        let mut parts = vec![operand(self)?];
        while self.peek_keyword(keyword) {
            self.position += 1;
            parts.push(operand(self)?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { join(parts) })
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("not") {
            self.position += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or_expression()?;
                self.expect(Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(word)) if matches!(self.tokens.get(self.position), Some(Token::Open)) => {
                self.function(&word)
            }
            Some(Token::Word(property)) => {
                let equal = match self.next() {
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("eq") => true,
                    Some(Token::Word(op)) if op.eq_ignore_ascii_case("ne") => false,
                    other => return Err(format!("unsupported operator {other:?}")),
                };
                Ok(Filter::Compare { property, equal, literal: self.literal()? })
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn function(&mut self, name: &str) -> Result<Filter, String> {
        self.expect(Token::Open)?;
        let Some(Token::Word(property)) = self.next() else {
            return Err(format!("{name} needs a property"));
        };
        self.expect(Token::Comma)?;
        let Some(Token::Text(argument)) = self.next() else {
            return Err(format!("{name} needs a string"));
        };
        self.expect(Token::Close)?;
        match name.to_ascii_lowercase().as_str() {
            "startswith" => Ok(Filter::StartsWith { property, prefix: argument }),
            "endswith" => Ok(Filter::EndsWith { property, suffix: argument }),
            _ => Err(format!("unsupported function {name}")),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Value::String(text)),
            Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "null" => Ok(Value::Null),
                _ => word.parse::<i64>().map(Value::from).map_err(|_| format!("unsupported literal {word}")),
            },
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
}

/// `$search="displayName:wa" OR "displayName:ad"`: each clause matches a substring of one property.
pub struct Search {
    clauses: Vec<(String, String)>,
    all_required: bool,
}

impl Search {
    pub fn parse(text: &str) -> Result<Search, String> {
        let quoted: Vec<&str> = text.split('"').collect();
        if quoted.len() < 3 || quoted.len().is_multiple_of(2) {
            return Err("search clauses must be quoted".into());
        }
        let clauses = quoted
            .iter()
            .skip(1)
            .step_by(2)
            .map(|clause| {
                clause
                    .split_once(':')
                    .map(|(property, value)| (property.trim().to_owned(), value.trim().to_lowercase()))
                    .ok_or_else(|| format!("search clause '{clause}' needs property:value"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let all_required = quoted.iter().step_by(2).any(|between| between.trim().eq_ignore_ascii_case("and"));
        Ok(Search { clauses, all_required })
    }

    pub fn properties(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|(property, _)| property.as_str())
    }

    pub fn matches(&self, entity: &dyn GraphEntity) -> bool {
        let clause_matches = |(property, needle): &(String, String)| match lookup(entity, property) {
            Value::String(text) => text.to_lowercase().contains(needle.as_str()),
            _ => false,
        };
        if self.all_required {
            self.clauses.iter().all(clause_matches)
        } else {
            self.clauses.iter().any(clause_matches)
        }
    }
}

/// `$orderby=displayName [asc|desc]`.
pub struct OrderBy {
    pub property: String,
    descending: bool,
}

impl OrderBy {
    pub fn parse(text: &str) -> Result<OrderBy, String> {
        let mut words = text.split_whitespace();
        let property = words.next().ok_or("empty $orderby")?.to_owned();
        let descending = match words.next() {
            None => false,
            Some(direction) if direction.eq_ignore_ascii_case("asc") => false,
            Some(direction) if direction.eq_ignore_ascii_case("desc") => true,
            Some(other) => return Err(format!("unsupported direction {other}")),
        };
        Ok(OrderBy { property, descending })
    }

    pub fn compare(&self, left: &dyn GraphEntity, right: &dyn GraphEntity) -> Ordering {
        let key = |entity: &dyn GraphEntity| match lookup(entity, &self.property) {
            Value::String(text) => text.to_lowercase(),
            other => other.to_string(),
        };
        let ordering = key(left).cmp(&key(right));
        if self.descending { ordering.reverse() } else { ordering }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_skip_ad_groups_filter_as_advanced() {
        let filter = Filter::parse("onPremisesSyncEnabled ne true").unwrap();
        assert!(filter.is_advanced());
        assert_eq!(filter.properties(), vec!["onPremisesSyncEnabled"]);
    }

    #[test]
    fn equality_filter_is_not_advanced() {
        let filter = Filter::parse("servicePrincipalType eq 'ManagedIdentity'").unwrap();
        assert!(!filter.is_advanced());
    }

    #[test]
    fn parses_functions_and_boolean_operators() {
        let filter =
            Filter::parse("endsWith(userPrincipalName,'#EXT#@contoso.com') and not(accountEnabled eq false)").unwrap();
        assert!(matches!(filter, Filter::And(ref parts) if parts.len() == 2));
    }

    #[test]
    fn rejects_unsupported_operators() {
        assert!(Filter::parse("createdDateTime gt 2020").is_err());
    }
}
