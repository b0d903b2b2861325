/** align4j data module. */
package org.align4j.data;
