/**
 * Apache Spark jobs around training: {@link org.align4j.spark.ReferenceScoring} scores a run's reference
 * log-probs over a cluster into the trainer's precomputed cache.
 */
package org.align4j.spark;
