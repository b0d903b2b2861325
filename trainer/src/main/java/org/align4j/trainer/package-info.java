/** align4j trainer module. */
package org.align4j.trainer;
