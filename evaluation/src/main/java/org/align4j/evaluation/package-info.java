/** align4j evaluation module. */
package org.align4j.evaluation;
