/** align4j losses module. */
package org.align4j.losses;
