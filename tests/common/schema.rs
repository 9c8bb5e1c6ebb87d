//! Schema introspection for tests: tables, columns (name, nullability, in
//! order), primary keys, foreign keys with their delete rule, and indexes,
//! in one shape for both SQL dialects.

use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// (name, not null) in column order.
    pub columns: Vec<(String, bool)>,
    pub primary_key: Vec<String>,
    /// (columns, referenced table, referenced columns, on delete)
    pub foreign_keys: Vec<(Vec<String>, String, Vec<String>, String)>,
    /// name -> (columns, unique)
    pub indexes: BTreeMap<String, (Vec<String>, bool)>,
}

pub type Schema = BTreeMap<String, Table>;

/// The schema of the SQLite database at `path`.
pub fn sqlite_schema(path: &std::path::Path) -> Schema {
    sqlite_schema_of(&rusqlite::Connection::open(path).unwrap())
}

/// [`sqlite_schema`] through an open (maybe keyed) connection.
pub fn sqlite_schema_of(conn: &rusqlite::Connection) -> Schema {
    let strings = |sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let text = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Text(s) => s.clone(),
        rusqlite::types::Value::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    };
    let mut schema = Schema::new();
    for row in strings(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    ) {
        let name = text(&row[0]);
        let mut table = Table::default();
        let mut pk: Vec<(i64, String)> = Vec::new();
        // cid, name, type, notnull, dflt_value, pk
        for c in strings(&format!("PRAGMA table_xinfo({name})")) {
            let column = text(&c[1]);
            let pk_index: i64 = text(&c[5]).parse().unwrap();
            table
                .columns
                .push((column.clone(), text(&c[3]) == "1" || pk_index > 0));
            if pk_index > 0 {
                pk.push((pk_index, column));
            }
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        // id, seq, table, from, to, on_update, on_delete, match
        for f in strings(&format!("PRAGMA foreign_key_list({name})")) {
            table.foreign_keys.push((
                vec![text(&f[3])],
                text(&f[2]),
                vec![text(&f[4])],
                text(&f[6]),
            ));
        }
        // seq, name, unique, origin, partial
        for i in strings(&format!("PRAGMA index_list({name})")) {
            if text(&i[3]) == "pk" {
                continue;
            }
            let index = text(&i[1]);
            // An expression's name is NULL.
            let columns = strings(&format!("PRAGMA index_info({index})"))
                .iter()
                .map(|c| match &c[2] {
                    rusqlite::types::Value::Null => EXPRESSION.to_owned(),
                    name => text(name),
                })
                .collect();
            table.indexes.insert(index, (columns, text(&i[2]) == "1"));
        }
        schema.insert(name, table);
    }
    schema
}

/// What an index key that is an expression, not a column, is called.
pub const EXPRESSION: &str = "(expression)";

#[cfg(feature = "postgres")]
/// SQL for the names of the columns numbered in `attnums` of relation `rel`,
/// in order (an expression, number 0, as [`EXPRESSION`]).
fn key_columns(attnums: &str, rel: &str) -> String {
    format!(
        "ARRAY(SELECT COALESCE(a.attname::text, '{EXPRESSION}') \
         FROM unnest({attnums}) WITH ORDINALITY k(n, o) \
         LEFT JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.n ORDER BY k.o)"
    )
}

/// The schema of the PostgreSQL database at `url`.
#[cfg(feature = "postgres")]
pub fn postgres_schema(url: &str) -> Schema {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut schema = Schema::new();
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .unwrap();
    for t in tables {
        let name: String = t.get(0);
        let mut table = Table::default();
        for c in client
            .query(
                "SELECT column_name::text, is_nullable = 'NO' FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                &[&name],
            )
            .unwrap()
        {
            table.columns.push((c.get(0), c.get(1)));
        }
        let pk_sql = format!(
            "SELECT {} FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype = 'p'",
            key_columns("c.conkey", "c.conrelid")
        );
        if let Some(row) = client.query_opt(&pk_sql, &[&name]).unwrap() {
            table.primary_key = row.get(0);
        }
        let fk_sql = format!(
            "SELECT {}, c.confrelid::regclass::text, {}, \
             CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'a' THEN 'NO ACTION' \
             WHEN 'r' THEN 'RESTRICT' WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END \
             FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype = 'f'",
            key_columns("c.conkey", "c.conrelid"),
            key_columns("c.confkey", "c.confrelid"),
        );
        for f in client.query(&fk_sql, &[&name]).unwrap() {
            table
                .foreign_keys
                .push((f.get(0), f.get(1), f.get(2), f.get(3)));
        }
        let index_sql = format!(
            "SELECT ic.relname::text, {}, i.indisunique FROM pg_index i \
             JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = $1::text::regclass AND NOT i.indisprimary",
            key_columns("i.indkey::int2[]", "i.indrelid")
        );
        for i in client.query(&index_sql, &[&name]).unwrap() {
            table.indexes.insert(i.get(0), (i.get(1), i.get(2)));
        }
        schema.insert(name, table);
    }
    schema
}
