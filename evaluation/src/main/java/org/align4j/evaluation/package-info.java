/** Held-out preference metrics and scoring of preference pairs under a model. */
package org.align4j.evaluation;
