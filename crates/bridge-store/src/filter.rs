//! A `WHERE` clause built from optional filters, every value bound as a numbered parameter
//! (nothing an operator typed is ever spliced into SQL).

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs};

/// One bound value.
#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

/// Conditions joined by `AND`, with their parameters.
#[derive(Debug, Clone, Default)]
pub struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    /// No condition.
    pub fn new() -> Self {
        Self::default()
    }

    fn next(&self) -> usize {
        self.binds.len() + 1
    }

    /// `column op $n` with an integer, when there is one (`op` is written by the caller:
    /// `=`, `>=`, `<`).
    pub fn int(&mut self, column: &'static str, op: &'static str, v: Option<i64>) -> &mut Self {
        if let Some(v) = v {
            self.clauses.push(format!("{column} {op} ${}", self.next()));
            self.binds.push(Bind::Int(v));
        }
        self
    }

    /// `column = $n` with a text value, when there is one.
    pub fn text(&mut self, column: &'static str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v {
            self.clauses.push(format!("{column} = ${}", self.next()));
            self.binds.push(Bind::Text(v.to_owned()));
        }
        self
    }

    /// `column` contains `v`, ignoring ASCII case; `%`, `_` and `\` in `v` match themselves.
    pub fn contains(&mut self, column: &'static str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let escaped = v
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            self.clauses
                .push(format!("LOWER({column}) LIKE ${} ESCAPE '\\'", self.next()));
            self.binds.push(Bind::Text(format!("%{escaped}%")));
        }
        self
    }

    /// A fixed condition with no parameter (`state IN ('dead', 'cancelled')`).
    pub fn raw(&mut self, clause: &'static str) -> &mut Self {
        self.clauses.push(clause.to_owned());
        self
    }

    /// ` WHERE ...`, or nothing.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The number the next parameter after these gets (`LIMIT $n`).
    pub fn after(&self) -> usize {
        self.next()
    }

    /// Binds the values to a query made from [`Where::sql`].
    pub fn bind_as<'q, O>(
        &self,
        mut q: QueryAs<'q, Any, O, AnyArguments>,
    ) -> QueryAs<'q, Any, O, AnyArguments> {
        for b in &self.binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }

    /// Binds the values to a statement made from [`Where::sql`].
    pub fn bind<'q>(&self, mut q: Query<'q, Any, AnyArguments>) -> Query<'q, Any, AnyArguments> {
        for b in &self.binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_filters_become_conditions_and_values_are_parameters() {
        let mut w = Where::new();
        w.int("org_id", "=", Some(7))
            .int("id", "<", None)
            .text("name", Some("x'; DROP TABLE jobs; --"))
            .contains("last_error", Some("50%_off\\"));
        assert_eq!(
            w.sql(),
            " WHERE org_id = $1 AND name = $2 AND LOWER(last_error) LIKE $3 ESCAPE '\\'"
        );
        assert_eq!(w.after(), 4);
        assert!(matches!(&w.binds[2], Bind::Text(t) if t == "%50\\%\\_off\\\\%"));
        assert_eq!(Where::new().sql(), "");
    }
}
