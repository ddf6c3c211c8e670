//! The graph state the Python pipeline computes every turn
//! (`get_graph_state`): counts by type, orphans, and the depth of the
//! longest chain over every edge type, counted in nodes.
//!
//! It differs from [`GraphSummary`](super::GraphSummary), which this module
//! had first and keeps: the summary counts only edges between current
//! nodes, lists isolated nodes, and measures the longest `leads_to` chain
//! in edges; this state counts every edge of the session, and its depth
//! follows all edge types and counts nodes, as the Python scorers expect.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use entity::kg_edge::{self, EdgeType};
use entity::kg_node;
use entity::{NodeId, SessionId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use crate::error::Result;

use super::graph::{GraphRepository, current_nodes_query};

/// The Python system's `GraphState` of a session (less the fields it
/// computes elsewhere: phase, saturation, strategy history).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GraphState {
    /// Current (not superseded) nodes.
    pub node_count: u64,
    /// Every edge of the session, also those touching a superseded node
    /// (as the Python count does).
    pub edge_count: u64,
    /// Current nodes by node type (their sum is `node_count`).
    pub nodes_by_type: BTreeMap<String, u64>,
    /// Every edge by edge type.
    pub edges_by_type: BTreeMap<String, u64>,
    /// Current nodes that no edge of the session touches.
    pub orphan_count: u64,
    /// The longest chain, counted in nodes (A→B→C is 3; a lone node 1; an
    /// empty graph 0), as the Python system measures it: a breadth-first
    /// walk over the edges between current nodes, from every node without
    /// an incoming edge (from every node when all are on cycles), each
    /// node counted at the first depth the walk reaches it.
    pub max_depth: u64,
}

/// The state of a graph given as current (id, type) nodes and every
/// (source, target, type) edge of the session.
pub(crate) fn graph_state(
    nodes: &[(NodeId, String)],
    edges: &[(NodeId, NodeId, EdgeType)],
) -> GraphState {
    let mut state = GraphState {
        node_count: nodes.len() as u64,
        edge_count: edges.len() as u64,
        ..GraphState::default()
    };
    for (_, node_type) in nodes {
        *state.nodes_by_type.entry(node_type.clone()).or_default() += 1;
    }
    let mut touched: HashSet<&NodeId> = HashSet::new();
    for (source, target, edge_type) in edges {
        *state
            .edges_by_type
            .entry(sea_orm::ActiveEnum::to_value(edge_type))
            .or_default() += 1;
        touched.insert(source);
        touched.insert(target);
    }
    state.orphan_count = nodes.iter().filter(|(id, _)| !touched.contains(id)).count() as u64;
    state.max_depth = longest_chain(nodes, edges);
    state
}

/// The Python `_find_longest_path_bfs` over the directed edges between
/// current nodes.
fn longest_chain(nodes: &[(NodeId, String)], edges: &[(NodeId, NodeId, EdgeType)]) -> u64 {
    if nodes.is_empty() {
        return 0;
    }
    let index: HashMap<&NodeId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id, i))
        .collect();
    let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut has_incoming = vec![false; nodes.len()];
    for (source, target, _) in edges {
        if let (Some(&s), Some(&t)) = (index.get(source), index.get(target)) {
            adjacency[s].push(t);
            has_incoming[t] = true;
        }
    }
    let mut roots: Vec<usize> = (0..nodes.len()).filter(|&i| !has_incoming[i]).collect();
    if roots.is_empty() {
        roots = (0..nodes.len()).collect();
    }
    let mut deepest = 0;
    let mut visited = vec![false; nodes.len()];
    let mut queue = VecDeque::new();
    for root in roots {
        visited.iter_mut().for_each(|v| *v = false);
        queue.clear();
        queue.push_back((root, 1u64));
        while let Some((node, depth)) = queue.pop_front() {
            if visited[node] {
                continue;
            }
            visited[node] = true;
            deepest = deepest.max(depth);
            for &next in &adjacency[node] {
                if !visited[next] {
                    queue.push_back((next, depth + 1));
                }
            }
        }
    }
    deepest
}

impl GraphRepository {
    /// The session's graph state as the Python pipeline computes it, from
    /// one snapshot.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn graph_state(&self, session_id: &SessionId) -> Result<GraphState> {
        let snapshot = self.db().begin_read().await?;
        let nodes: Vec<(NodeId, String)> =
            current_nodes_query(self.db().backend().into(), session_id)
                .select_only()
                .column(kg_node::Column::Id)
                .column(kg_node::Column::NodeType)
                .into_tuple()
                .all(&snapshot)
                .await?;
        let edges: Vec<(NodeId, NodeId, EdgeType)> = kg_edge::Entity::find()
            .filter(kg_edge::Column::SessionId.eq(session_id))
            .select_only()
            .column(kg_edge::Column::SourceNodeId)
            .column(kg_edge::Column::TargetNodeId)
            .column(kg_edge::Column::EdgeType)
            .into_tuple()
            .all(&snapshot)
            .await?;
        snapshot.commit().await?;
        Ok(graph_state(&nodes, &edges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(ids: &[&str]) -> Vec<(NodeId, String)> {
        ids.iter()
            .map(|id| (NodeId::new(*id), "attribute".to_owned()))
            .collect()
    }

    fn edge(s: &str, t: &str) -> (NodeId, NodeId, EdgeType) {
        (NodeId::new(s), NodeId::new(t), EdgeType::LeadsTo)
    }

    #[test]
    fn an_empty_graph_has_depth_zero_and_a_lone_node_depth_one() {
        assert_eq!(graph_state(&[], &[]).max_depth, 0);
        let lone = graph_state(&nodes(&["a"]), &[]);
        assert_eq!((lone.max_depth, lone.orphan_count), (1, 1));
    }

    #[test]
    fn a_chain_counts_its_nodes_over_every_edge_type() {
        let mut edges = vec![edge("a", "b"), edge("b", "c")];
        edges[1].2 = EdgeType::Enables;
        let state = graph_state(&nodes(&["a", "b", "c", "d"]), &edges);
        assert_eq!(state.max_depth, 3);
        assert_eq!(state.orphan_count, 1);
        assert_eq!(state.edges_by_type.get("enables"), Some(&1));
    }

    #[test]
    fn a_graph_of_cycles_only_starts_from_every_node() {
        let state = graph_state(
            &nodes(&["a", "b", "c"]),
            &[edge("a", "b"), edge("b", "c"), edge("c", "a")],
        );
        assert_eq!(state.max_depth, 3);
    }

    #[test]
    fn a_node_is_counted_at_the_first_depth_the_walk_reaches_it() {
        // a→b→c→d and a shortcut a→d: Python's walk reaches d at depth 2
        // first, so the chain it reports is a→b→c (3), not 4.
        let state = graph_state(
            &nodes(&["a", "b", "c", "d"]),
            &[
                edge("a", "b"),
                edge("b", "c"),
                edge("c", "d"),
                edge("a", "d"),
            ],
        );
        assert_eq!(state.max_depth, 3);
    }

    #[test]
    fn edges_to_superseded_nodes_count_but_do_not_deepen_the_chain() {
        let state = graph_state(&nodes(&["a", "b"]), &[edge("a", "b"), edge("b", "gone")]);
        assert_eq!(
            (state.edge_count, state.max_depth, state.orphan_count),
            (2, 2, 0)
        );
    }
}
