//! Interview sessions.

use entity::concept_element;
use entity::session::{self, SessionStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, prelude::Json,
};

use crate::database::{Database, StatementBatch};
use crate::error::{Error, Result};

use super::concept_elements::{NewConceptElement, element_models, insert_elements};
use super::{check_fraction, check_json_depth, insert_one, new_id, now_utc};

/// What it takes to start an interview.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// The id to use; a new UUIDv7 when `None`.
    pub id: Option<String>,
    /// Interview methodology, e.g. `means_end_chain`.
    pub methodology: String,
    /// Id of the concept explored.
    pub concept_id: String,
    /// Name of the concept explored.
    pub concept_name: String,
    /// Methodology settings (a JSON object).
    pub config: Json,
}

/// Sessions: create, read, list, change status and metrics, config, delete.
#[derive(Debug, Clone)]
pub struct SessionRepository {
    db: Database,
}

fn session_model(new: NewSession) -> Result<session::Model> {
    check_config(&new.config)?;
    let now = now_utc();
    Ok(session::Model {
        id: new.id.unwrap_or_else(new_id),
        methodology: new.methodology,
        concept_id: new.concept_id,
        concept_name: new.concept_name,
        status: SessionStatus::Active,
        config: new.config,
        created_at: now,
        updated_at: now,
        completed_at: None,
        turn_count: 0,
        coverage_score: Some(0.0),
    })
}

fn check_config(config: &Json) -> Result<()> {
    if !config.is_object() {
        return Err(Error::InvalidInput(
            "a session's config must be a JSON object".into(),
        ));
    }
    check_json_depth("a session's config", config)
}

pub(crate) fn not_found(id: &str) -> Error {
    Error::NotFound {
        entity: "sessions",
        id: id.to_owned(),
    }
}

impl SessionRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Creates an active session with no turns.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the id is taken; [`Error::InvalidInput`]
    /// when the config is not a JSON object.
    #[tracing::instrument(skip_all, fields(session_id))]
    pub async fn create(&self, new: NewSession) -> Result<session::Model> {
        let model = session_model(new)?;
        tracing::Span::current().record("session_id", model.id.as_str());
        insert_one(&self.db, model.clone().into_active_model()).await?;
        Ok(model)
    }

    /// Creates an active session and seeds its concept elements, in one
    /// transaction: both land or neither does.
    ///
    /// # Errors
    /// As [`create`](Self::create) and
    /// [`ConceptElementRepository::seed`](super::ConceptElementRepository::seed).
    #[tracing::instrument(skip_all, fields(session_id, elements = elements.len()))]
    pub async fn create_with_elements(
        &self,
        new: NewSession,
        elements: Vec<NewConceptElement>,
    ) -> Result<(session::Model, Vec<concept_element::Model>)> {
        let model = session_model(new)?;
        tracing::Span::current().record("session_id", model.id.as_str());
        let elements = element_models(&model.id, elements);
        let txn = self.db.begin_write().await?;
        session::Entity::insert(model.clone().into_active_model())
            .exec_without_returning(&*txn)
            .await?;
        if !elements.is_empty() {
            insert_elements(&*txn, &elements).await?;
        }
        txn.commit().await?;
        Ok((model, elements))
    }

    /// The session `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, session_id: &str) -> Result<session::Model> {
        session::Entity::find_by_id(session_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| not_found(session_id))
    }

    /// Sessions newest first, of one status or all, at most `limit`.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        status: Option<SessionStatus>,
        limit: u64,
    ) -> Result<Vec<session::Model>> {
        let mut query = session::Entity::find()
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .limit(limit);
        if let Some(status) = status {
            query = query.filter(session::Column::Status.eq(status));
        }
        Ok(query.all(self.db.connection()).await?)
    }

    /// Sets the status. Completing sets `completed_at` (kept if it was
    /// already completed); any other status clears it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn update_status(
        &self,
        session_id: &str,
        status: SessionStatus,
    ) -> Result<session::Model> {
        let txn = self.db.begin_write().await?;
        let current = session::Entity::find_by_id(session_id)
            .lock_exclusive()
            .one(&*txn)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let now = now_utc();
        let completed_at = match (status, current.completed_at) {
            (SessionStatus::Completed, Some(at)) => Some(at),
            (SessionStatus::Completed, None) => Some(now),
            _ => None,
        };
        let mut active = current.into_active_model();
        active.status = Set(status);
        active.completed_at = Set(completed_at);
        active.updated_at = Set(now);
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Records the session's progress: how many turns, and the coverage.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] for a negative turn count or a coverage that
    /// is not a number in [0, 1].
    #[tracing::instrument(skip(self))]
    pub async fn update_metrics(
        &self,
        session_id: &str,
        turn_count: i32,
        coverage_score: f64,
    ) -> Result<session::Model> {
        if turn_count < 0 {
            return Err(Error::InvalidInput(format!(
                "turn count {turn_count} is negative"
            )));
        }
        check_fraction("coverage score", coverage_score)?;
        self.update_columns(session_id, |active| {
            active.turn_count = Set(turn_count);
            active.coverage_score = Set(Some(coverage_score));
        })
        .await
    }

    /// The session's methodology settings.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn config(&self, session_id: &str) -> Result<Json> {
        let config: Option<Json> = session::Entity::find_by_id(session_id)
            .select_only()
            .column(session::Column::Config)
            .into_tuple()
            .one(self.db.connection())
            .await?;
        config.ok_or_else(|| not_found(session_id))
    }

    /// Replaces the session's settings.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] when `config` is not a JSON object.
    #[tracing::instrument(skip(self, config))]
    pub async fn replace_config(&self, session_id: &str, config: Json) -> Result<session::Model> {
        check_config(&config)?;
        self.update_columns(session_id, move |active| active.config = Set(config))
            .await
    }

    /// Deletes the session and, by cascade, every row of it in every table.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, session_id: &str) -> Result<()> {
        let statement = Query::delete()
            .from_table(session::Entity)
            .and_where(Expr::col(session::Column::Id).eq(session_id))
            .returning_col(session::Column::Id)
            .to_owned();
        let deleted = self
            .db
            .write_batch(StatementBatch::of_returning_at_most_one(
                sea_orm::DbBackend::from(self.db.backend()).build(&statement),
            ))
            .await?;
        if deleted.is_empty() {
            return Err(not_found(session_id));
        }
        Ok(())
    }

    /// Updates the columns `change` sets, and `updated_at` (to now, unless a
    /// later write already set it later), in one write.
    async fn update_columns(
        &self,
        session_id: &str,
        change: impl FnOnce(&mut session::ActiveModel),
    ) -> Result<session::Model> {
        let mut active = session::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(session_id.to_owned()),
            ..Default::default()
        };
        change(&mut active);
        // `updated_at` never goes back, whatever order writes commit in.
        let updated_at =
            Func::greatest([Expr::col(session::Column::UpdatedAt), Expr::val(now_utc())]);
        let statement = session::Entity::update_many()
            .set(active)
            .col_expr(session::Column::UpdatedAt, updated_at.into())
            .filter(session::Column::Id.eq(session_id))
            .into_query()
            .returning_all()
            .to_owned();
        let rows = self
            .db
            .write_batch(StatementBatch::of_returning_at_most_one(
                sea_orm::DbBackend::from(self.db.backend()).build(&statement),
            ))
            .await?;
        match rows.first() {
            Some(row) => Ok(session::Model::from_query_result(row, "")?),
            None => Err(not_found(session_id)),
        }
    }
}
