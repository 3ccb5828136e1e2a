// Compares version pairs with Maven's own ComparableVersion (maven-artifact, shipped by Debian's maven package).
// Reads "A<TAB>B" lines on stdin and prints -1, 0 or 1 per line. Run by generate.py.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.maven.artifact.versioning.ComparableVersion;

public class MavenCompare {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] p = line.split("\t", 2);
            int c = new ComparableVersion(p[0]).compareTo(new ComparableVersion(p[1]));
            System.out.println(Integer.signum(c));
        }
    }
}
